//! PyO3 bridge between the coglet server core and the Python worker (`coglet._impl`).
use pyo3::prelude::*;

#[pymodule]
fn _impl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
