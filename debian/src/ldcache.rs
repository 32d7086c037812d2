//! `/etc/ld.so.cache` (what `ldconfig` would write), so that `ldconfig -p` and
//! `ctypes.util.find_library` see the libraries. The loader finds libraries in the standard
//! multiarch directories without it.

use crate::Error;
use crate::effects::Installing;
use crate::layer::LayerTar;

pub fn write(inst: &Installing, arch: &str, layer: &mut LayerTar) -> Result<(), Error> {
    let _ = (inst, arch, layer);
    Ok(())
}
