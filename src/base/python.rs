//! The Python of a base image, read from its layers: the interpreter `python` resolves to on the
//! image's `PATH` (Cog's `CMD ["python", ...]`), and where that interpreter imports installed
//! packages from:
//!
//! - a python.org build (`python:X.Y-slim`, `/usr/local/bin/pythonX.Y`):
//!   `<prefix>/lib/pythonX.Y/site-packages`;
//! - Debian's or Ubuntu's `python3` (`/usr/bin/pythonX.Y`, with `/usr/lib/python3/dist-packages`):
//!   `/usr/local/lib/pythonX.Y/dist-packages`, where pip installs on those systems;
//! - a virtual environment (a `pyvenv.cfg` above its `bin/`): its own `lib/pythonX.Y/site-packages`.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use layers::{BlobStore, LayerInfo};

use super::PythonLayout;

/// What a layer walk keeps of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File,
    Dir,
    Link(String),
}

/// The merged tree of a base's layers, paths relative to `/` (whiteouts applied).
#[derive(Debug, Default)]
pub struct BaseTree {
    nodes: BTreeMap<String, Node>,
}

/// A base's Python could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("reading layer {layer}")]
    Layer {
        layer: String,
        #[source]
        source: std::io::Error,
    },
}

fn normalize(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let rel = text
        .trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/');
    (!rel.split('/').any(|c| c == "..")).then(|| rel.to_owned())
}

impl BaseTree {
    /// Reads `layers` (blobs in `store`, bottom first).
    pub fn read(store: &BlobStore, layers: &[LayerInfo]) -> Result<Self, PythonError> {
        let mut tree = Self::default();
        for layer in layers {
            let path = store.blob_path(&layer.digest);
            let err = |source| PythonError::Layer {
                layer: layer.digest.to_string(),
                source,
            };
            let reader = open_layer(&path).map_err(err)?;
            tree.apply(reader).map_err(err)?;
        }
        Ok(tree)
    }

    /// Applies one layer tar on top (OCI whiteouts: `.wh.NAME`, `.wh..wh..opq`).
    pub fn apply(&mut self, reader: impl Read) -> std::io::Result<()> {
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries()? {
            let entry = entry?;
            let Some(path) = normalize(&entry.path()?) else {
                continue;
            };
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            if name == layers::OPAQUE_WHITEOUT {
                self.remove_children(dir);
                continue;
            }
            if let Some(hidden) = name.strip_prefix(layers::WHITEOUT_PREFIX) {
                let gone = if dir.is_empty() {
                    hidden.to_owned()
                } else {
                    format!("{dir}/{hidden}")
                };
                self.remove_children(&gone);
                self.nodes.remove(&gone);
                continue;
            }
            let node = match entry.header().entry_type() {
                tar::EntryType::Directory => Node::Dir,
                tar::EntryType::Symlink => Node::Link(
                    entry
                        .link_name()?
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                _ => Node::File,
            };
            if node != Node::Dir {
                self.remove_children(&path);
            }
            // Layers may leave out parent directories: they exist all the same.
            let mut parent = path.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                self.nodes.entry(up.to_owned()).or_insert(Node::Dir);
                parent = up;
            }
            self.nodes.insert(path, node);
        }
        Ok(())
    }

    fn remove_children(&mut self, dir: &str) {
        let prefix = format!("{dir}/");
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.nodes.remove(&p);
        }
    }

    /// `path` with every symlink in it followed (a few hops), or `None` when it does not exist.
    fn resolve(&self, path: &str) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        let mut rest: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_owned)
            .collect();
        let mut hops = 0;
        while let Some(part) = rest.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    parts.pop();
                    continue;
                }
                _ => {}
            }
            parts.push(part);
            let current = parts.join("/");
            match self.nodes.get(&current)? {
                Node::Link(target) => {
                    hops += 1;
                    if hops > 16 {
                        return None;
                    }
                    parts.pop();
                    if target.starts_with('/') {
                        parts.clear();
                    }
                    for c in target.split('/').filter(|c| !c.is_empty()).rev() {
                        rest.push(c.to_owned());
                    }
                }
                Node::File | Node::Dir => {}
            }
        }
        Some(parts.join("/"))
    }

    fn is_dir(&self, path: &str) -> bool {
        self.resolve(path)
            .is_some_and(|p| p.is_empty() || self.nodes.get(&p) == Some(&Node::Dir))
    }

    fn is_file(&self, path: &str) -> bool {
        self.resolve(path)
            .is_some_and(|p| self.nodes.get(&p) == Some(&Node::File))
    }

    /// The Python that `python` (else `python3`) runs on `path_env` (the image's `PATH`), and
    /// where it imports installed packages from. `None`: no Python on `PATH`.
    pub fn python(&self, path_env: &str) -> Option<FoundPython> {
        for command in ["python", "python3"] {
            for dir in path_env.split(':').filter(|d| d.starts_with('/')) {
                let candidate = format!("{}/{command}", dir.trim_end_matches('/'));
                if !self.is_file(&candidate) {
                    continue;
                }
                let real = self.resolve(&candidate)?;
                let mut found = self.layout_of(&candidate, &real);
                if command == "python3"
                    && let Some(layout) = &mut found.layout
                {
                    // No `python` anywhere on PATH: the server's `python` is linked to it.
                    layout.python_link = Some(candidate.clone());
                }
                return Some(found);
            }
        }
        None
    }

    fn layout_of(&self, command: &str, real: &str) -> FoundPython {
        let name = real.rsplit('/').next().unwrap_or_default();
        let version = name
            .strip_prefix("python")
            .filter(|v| v.contains('.') && v.split('.').all(|p| p.parse::<u32>().is_ok()))
            .map(str::to_owned);
        // The directory the command was found in: a venv's `bin/` is not followed into the
        // interpreter it links to.
        let bin = command.rsplit_once('/').map_or("", |(d, _)| d);
        let venv = bin.rsplit_once('/').map(|(root, _)| root.to_owned());
        let real_abs = format!("/{real}");
        let prefix = real_abs
            .rsplit_once('/')
            .and_then(|(bin, _)| bin.rsplit_once('/'))
            .map_or_else(String::new, |(p, _)| p.to_owned());
        let prefix = if prefix.is_empty() {
            "/".to_owned()
        } else {
            prefix
        };
        let Some(version) = version else {
            return FoundPython {
                interpreter: real_abs,
                version: None,
                layout: None,
                scheme: Scheme::Unknown,
            };
        };
        let (scheme, layout) = match venv.filter(|root| self.is_file(&format!("{root}/pyvenv.cfg")))
        {
            Some(root) => (
                Scheme::Venv,
                PythonLayout {
                    version: version.clone(),
                    interpreter: command.to_owned(),
                    site_packages: format!("{root}/lib/python{version}/site-packages"),
                    prefix: root,
                    python_link: None,
                },
            ),
            None if prefix == "/usr" && self.is_dir("/usr/lib/python3/dist-packages") => {
                (Scheme::Debian, PythonLayout::debian(&version))
            }
            None => (
                Scheme::Prefix,
                PythonLayout {
                    version: version.clone(),
                    interpreter: real_abs.clone(),
                    site_packages: format!(
                        "{}/lib/python{version}/site-packages",
                        prefix.trim_end_matches('/')
                    ),
                    prefix: prefix.clone(),
                    python_link: None,
                },
            ),
        };
        FoundPython {
            interpreter: real_abs,
            version: Some(version),
            layout: Some(layout),
            scheme,
        }
    }
}

/// How the base's Python installs packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `<prefix>/lib/pythonX.Y/site-packages` (python.org builds, python-build-standalone).
    Prefix,
    /// Debian's and Ubuntu's `python3`: `/usr/local/lib/pythonX.Y/dist-packages`.
    Debian,
    /// A virtual environment.
    Venv,
    /// An interpreter whose version its name does not say.
    Unknown,
}

/// The Python a base runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPython {
    /// The interpreter's real path (symlinks followed).
    pub interpreter: String,
    /// `X.Y`, from the interpreter's name.
    pub version: Option<String>,
    pub layout: Option<PythonLayout>,
    pub scheme: Scheme,
}

/// Opens a layer blob, decompressing by its magic bytes (gzip, zstd, or a plain tar).
fn open_layer(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let file = fs_err::File::open(path)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
    } else {
        Box::new(reader)
    })
}

/// `PATH` from an image config's environment (Docker's default when unset).
pub fn path_env(env: &[String]) -> String {
    env.iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    enum E<'a> {
        Dir(&'a str),
        File(&'a str),
        Link(&'a str, &'a str),
    }

    fn layer(entries: &[E<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o755);
            header.set_size(0);
            match entry {
                E::Dir(p) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    builder.append_data(&mut header, p, &[][..]).unwrap();
                }
                E::File(p) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    builder.append_data(&mut header, p, &[][..]).unwrap();
                }
                E::Link(p, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    builder.append_link(&mut header, p, target).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn tree(layers: &[Vec<u8>]) -> BaseTree {
        let mut tree = BaseTree::default();
        for l in layers {
            tree.apply(&l[..]).unwrap();
        }
        tree
    }

    const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    #[test]
    fn debian_python3_installs_into_local_dist_packages() {
        // A debootstrap-like base: merged /usr, python3 from Debian, python-is-python3.
        let base = tree(&[layer(&[
            E::Link("bin", "usr/bin"),
            E::Dir("usr/bin"),
            E::File("usr/bin/python3.11"),
            E::Link("usr/bin/python3", "python3.11"),
            E::Link("usr/bin/python", "python3"),
            E::Dir("usr/lib/python3/dist-packages"),
            E::Dir("usr/lib/python3.11"),
        ])]);
        let found = base.python(PATH).unwrap();
        assert_eq!(found.scheme, Scheme::Debian);
        assert_eq!(found.interpreter, "/usr/bin/python3.11");
        assert_eq!(found.layout, Some(PythonLayout::debian("3.11")));
        assert_eq!(
            found.layout.unwrap().site_packages,
            "/usr/local/lib/python3.11/dist-packages"
        );
    }

    #[test]
    fn python_org_builds_use_site_packages() {
        let base = tree(&[
            layer(&[E::Dir("usr/bin"), E::File("usr/bin/perl")]),
            layer(&[
                E::File("usr/local/bin/python3.12"),
                E::Link("usr/local/bin/python3", "python3.12"),
                E::Link("usr/local/bin/python", "python3"),
                E::Dir("usr/local/lib/python3.12/site-packages"),
            ]),
        ]);
        let found = base.python(PATH).unwrap();
        assert_eq!(found.scheme, Scheme::Prefix);
        assert_eq!(found.layout, Some(PythonLayout::python_slim("3.12")));
    }

    #[test]
    fn a_venv_first_on_path_wins() {
        let base = tree(&[layer(&[
            E::File("usr/bin/python3.11"),
            E::Link("usr/bin/python3", "python3.11"),
            E::Dir("usr/lib/python3/dist-packages"),
            E::File("opt/venv/pyvenv.cfg"),
            E::Link("opt/venv/bin/python", "/usr/bin/python3.11"),
            E::Dir("opt/venv/lib/python3.11/site-packages"),
        ])]);
        let found = base.python(&format!("/opt/venv/bin:{PATH}")).unwrap();
        assert_eq!(found.scheme, Scheme::Venv);
        let layout = found.layout.unwrap();
        assert_eq!(
            layout.site_packages,
            "/opt/venv/lib/python3.11/site-packages"
        );
        assert_eq!(layout.interpreter, "/opt/venv/bin/python");
        // Without the venv on PATH: Debian's python3 (no `python`, so `python3`, linked).
        let found = base.python(PATH).unwrap();
        assert_eq!(found.scheme, Scheme::Debian);
        assert_eq!(
            found.layout.unwrap().python_link.as_deref(),
            Some("/usr/bin/python3")
        );
    }

    #[test]
    fn whiteouts_remove_python_and_cuda_images_have_none() {
        let base = tree(&[
            layer(&[
                E::File("usr/local/bin/python3.11"),
                E::Link("usr/local/bin/python", "python3.11"),
            ]),
            layer(&[E::File("usr/local/bin/.wh.python")]),
        ]);
        // `python` is gone; nothing named python3 either.
        assert_eq!(base.python(PATH), None);
        let cuda = tree(&[layer(&[
            E::Dir("usr/local/cuda/bin"),
            E::File("usr/local/cuda/bin/nvcc"),
            E::File("usr/bin/perl"),
        ])]);
        assert_eq!(cuda.python(PATH), None);
    }
}
