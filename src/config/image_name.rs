//! The default image name, `cog-<dirname>` (Cog's `DockerImageName`).

use std::path::Path;

/// `cog-` + the project directory's name, lowercased, spaces to dashes, only `[a-z0-9-]`, at
/// most 30 characters in all; a name already starting with `cog-` is not prefixed twice.
pub fn default_image_name(project_dir: &Path) -> String {
    const PREFIX: &str = "cog-";
    let base = project_dir.file_name().map_or_else(
        || "/".to_owned(),
        |name| name.to_string_lossy().into_owned(),
    );
    let name: String = base
        .to_lowercase()
        .replace(' ', "-")
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .take(30 - PREFIX.len())
        .collect();
    if name.starts_with(PREFIX) {
        name
    } else {
        format!("{PREFIX}{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_cog_rules() {
        assert_eq!(
            default_image_name(Path::new("/src/My Model")),
            "cog-my-model"
        );
        assert_eq!(
            default_image_name(Path::new("/src/héllo_wörld.v2")),
            "cog-hllowrldv2"
        );
        assert_eq!(default_image_name(Path::new("/src/cog-hello")), "cog-hello");
        assert_eq!(
            default_image_name(Path::new("/src/a-really-long-project-directory-name")),
            "cog-a-really-long-project-dire"
        );
        assert_eq!(default_image_name(Path::new("/")), "cog-");
    }
}
