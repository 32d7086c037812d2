use super::*;

const V: &str = crate::VERSION;

fn sdk_name() -> String {
    format!("cog-{V}-py3-none-any.whl")
}

fn coglet_name(arch: &str) -> String {
    format!("coglet-{V}-cp310-abi3-manylinux_2_17_{arch}.manylinux2014_{arch}.whl")
}

/// A directory holding (fake) wheels of these names.
fn dir_with(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        fs_err::write(dir.path().join(name), name.as_bytes()).unwrap();
    }
    dir
}

fn no_pypi(_: &[(Kind, Option<String>)]) -> Result<Vec<LockedPackage>, RuntimeWheelError> {
    panic!("PyPI is not asked")
}

fn names(packages: &[LockedPackage]) -> Vec<String> {
    packages
        .iter()
        .map(|p| format!("{} {}", p.name, p.filename))
        .collect()
}

#[test]
fn a_development_build_takes_dist_for_the_images_arch() {
    let dist = dir_with(&[&sdk_name(), &coglet_name("x86_64"), &coglet_name("aarch64")]);
    let store = tempfile::tempdir().unwrap();
    let defaults = Defaults {
        store_root: store.path(),
        dist: Some(dist.path().to_path_buf()),
    };
    for (arch, tag) in [(Arch::X86_64, "x86_64"), (Arch::Aarch64, "aarch64")] {
        let found = choose(None, None, arch, &defaults, no_pypi).unwrap();
        assert_eq!(
            names(&found),
            [
                format!("cog {}", sdk_name()),
                format!("coglet {}", coglet_name(tag))
            ]
        );
        let sdk = &found[0];
        assert_eq!(sdk.version, V);
        assert_eq!(
            sdk.sha256.as_deref(),
            Some(
                wheels::index::sha256_file(&dist.path().join(sdk_name()))
                    .unwrap()
                    .as_str()
            )
        );
        assert!(sdk.url.starts_with("file:///"), "{}", sdk.url);
    }
}

#[test]
fn an_image_without_a_server_for_its_platform_is_an_error() {
    let dist = dir_with(&[&sdk_name(), &coglet_name("x86_64")]);
    let store = tempfile::tempdir().unwrap();
    let defaults = Defaults {
        store_root: store.path(),
        dist: Some(dist.path().to_path_buf()),
    };
    let err = choose(None, None, Arch::Aarch64, &defaults, no_pypi).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "no coglet wheel for linux/arm64: the image would have no prediction server. Build the wheels into"
        ),
        "{message}"
    );
    assert!(
        message.contains("COGLET_TARGET=aarch64-unknown-linux-gnu"),
        "{message}"
    );

    let empty = tempfile::tempdir().unwrap();
    let defaults = Defaults {
        store_root: store.path(),
        dist: Some(empty.path().to_path_buf()),
    };
    let err = choose(None, None, Arch::X86_64, &defaults, no_pypi).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "no cog SDK wheel for linux/amd64: the image would have no prediction server."
        ),
        "{err}"
    );
}

#[test]
fn a_release_build_never_looks_at_the_build_machines_dist() {
    // `dist: None` is what a binary with embedded wheels uses; the test binary embeds none.
    let store = tempfile::tempdir().unwrap();
    let defaults = Defaults {
        store_root: store.path(),
        dist: None,
    };
    let err = choose(None, None, Arch::X86_64, &defaults, no_pypi).unwrap_err();
    assert!(err.to_string().contains("This cog carries"), "{err}");
}

#[test]
fn a_directory_gives_the_wheel_of_the_images_arch() {
    let wheels = dir_with(&[&sdk_name(), &coglet_name("x86_64"), &coglet_name("aarch64")]);
    let store = tempfile::tempdir().unwrap();
    let defaults = Defaults {
        store_root: store.path(),
        dist: None,
    };
    let dir = || Some(WheelSource::Path(wheels.path().to_path_buf()));
    let found = choose(dir(), dir(), Arch::Aarch64, &defaults, no_pypi).unwrap();
    assert_eq!(
        names(&found),
        [
            format!("cog {}", sdk_name()),
            format!("coglet {}", coglet_name("aarch64"))
        ]
    );
}

#[test]
fn a_directory_of_several_versions_prefers_this_one_else_asks_for_a_file() {
    let old = "coglet-0.0.1-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl";
    let wheels = dir_with(&[&coglet_name("x86_64"), old]);
    let found = wheel_at(Kind::Coglet, wheels.path(), Arch::X86_64).unwrap();
    assert_eq!(found, wheels.path().join(coglet_name("x86_64")));

    let two_old = dir_with(&[
        old,
        "coglet-0.0.2-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ]);
    let err = wheel_at(Kind::Coglet, two_old.path(), Arch::X86_64).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("COGLET_WHEEL: multiple wheels matching 'coglet-*.whl' in"),
        "{err}"
    );
}

#[test]
fn directories_without_a_fitting_wheel_say_so() {
    let wheels = dir_with(&[&coglet_name("x86_64")]);
    let err = wheel_at(Kind::Coglet, wheels.path(), Arch::Aarch64).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "COGLET_WHEEL: no wheel for platform linux/arm64 found in {} (found 1 for other platforms)",
            wheels.path().display()
        )
    );
    let err = wheel_at(Kind::Sdk, wheels.path(), Arch::Aarch64).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "COG_SDK_WHEEL: no wheel matching 'cog-*.whl' found in {}",
            wheels.path().display()
        )
    );
}

#[test]
fn a_missing_path_is_cogs_error() {
    let err = wheel_at(
        Kind::Coglet,
        Path::new("/nonexistent/path/coglet.whl"),
        Arch::X86_64,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "COGLET_WHEEL: path not found: /nonexistent/path/coglet.whl"
    );
}

#[test]
fn a_file_of_the_wrong_package_or_platform_is_refused() {
    let wheels = dir_with(&[&coglet_name("x86_64"), "notes.txt"]);
    let coglet = wheels.path().join(coglet_name("x86_64"));
    let err = checked_wheel(Kind::Coglet, &coglet, Arch::Aarch64).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "COGLET_WHEEL={}: a coglet wheel for another platform; the image is linux/arm64",
            coglet.display()
        )
    );
    let err = checked_wheel(Kind::Sdk, &coglet, Arch::X86_64).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("a wheel of `coglet`, not of `cog`"),
        "{err}"
    );
    let err = checked_wheel(Kind::Sdk, &wheels.path().join("notes.txt"), Arch::X86_64).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("not a wheel file name (name-version-tags.whl)"),
        "{err}"
    );
}

#[test]
fn a_url_is_pinned_by_its_file_name_and_hashed_when_downloaded() {
    let url = Url::parse(&format!("https://example.com/w/{}", coglet_name("aarch64"))).unwrap();
    let p = url_wheel(Kind::Coglet, &url, Arch::Aarch64).unwrap();
    assert_eq!((p.name.as_str(), p.version.as_str()), ("coglet", V));
    assert_eq!(p.url, url.as_str());
    assert_eq!(p.sha256, None);
    let err = url_wheel(Kind::Coglet, &url, Arch::X86_64).unwrap_err();
    assert!(err.to_string().contains("for another platform"), "{err}");
    let escaped = Url::parse("https://example.com/cog-0.17.0%2Blocal-py3-none-any.whl").unwrap();
    assert_eq!(
        url_wheel(Kind::Sdk, &escaped, Arch::X86_64)
            .unwrap()
            .filename,
        "cog-0.17.0+local-py3-none-any.whl"
    );
}

fn pypi_package(name: &str, version: &str) -> LockedPackage {
    LockedPackage {
        name: name.into(),
        version: version.into(),
        filename: format!("{name}-{version}-py3-none-any.whl"),
        url: format!("https://files.example/{name}-{version}-py3-none-any.whl"),
        ..LockedPackage::default()
    }
}

#[test]
fn the_sdk_from_pypi_brings_its_own_coglet() {
    let dist = dir_with(&[&sdk_name(), &coglet_name("x86_64")]);
    let store = tempfile::tempdir().unwrap();
    let defaults = Defaults {
        store_root: store.path(),
        dist: Some(dist.path().to_path_buf()),
    };
    let mut asked = Vec::new();
    let found = choose(
        Some(WheelSource::PyPi {
            version: Some("0.17.1".into()),
        }),
        None,
        Arch::X86_64,
        &defaults,
        |wanted| {
            asked = wanted.to_vec();
            Ok(vec![
                pypi_package("cog", "0.17.1"),
                pypi_package("coglet", "0.17.1"),
            ])
        },
    )
    .unwrap();
    assert_eq!(asked, [(Kind::Sdk, Some("0.17.1".to_owned()))]);
    assert_eq!(
        found
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect::<Vec<_>>(),
        [("cog", "0.17.1"), ("coglet", "0.17.1")],
        "the coglet of dist/ is not added to the SDK's own"
    );

    // A legacy SDK (no coglet) serves with its own Python server.
    let legacy = choose(
        Some(WheelSource::PyPi { version: None }),
        None,
        Arch::X86_64,
        &defaults,
        |_| Ok(vec![pypi_package("cog", "0.16.9")]),
    )
    .unwrap();
    assert_eq!(legacy.len(), 1);
}

#[test]
fn a_coglet_file_replaces_the_one_the_pypi_sdk_depends_on() {
    let wheels = dir_with(&[&coglet_name("x86_64")]);
    let store = tempfile::tempdir().unwrap();
    let defaults = Defaults {
        store_root: store.path(),
        dist: None,
    };
    let found = choose(
        Some(WheelSource::PyPi { version: None }),
        Some(WheelSource::Path(wheels.path().join(coglet_name("x86_64")))),
        Arch::X86_64,
        &defaults,
        |_| {
            Ok(vec![
                pypi_package("cog", "0.17.1"),
                pypi_package("coglet", "0.17.1"),
                pypi_package("structlog", "25.1.0"),
            ])
        },
    )
    .unwrap();
    assert_eq!(
        names(&found),
        [
            format!("coglet {}", coglet_name("x86_64")),
            "cog cog-0.17.1-py3-none-any.whl".to_owned(),
            "structlog structlog-25.1.0-py3-none-any.whl".to_owned(),
        ]
    );
}

#[test]
fn coglet_from_pypi_beside_our_sdk() {
    let dist = dir_with(&[&sdk_name()]);
    let store = tempfile::tempdir().unwrap();
    let defaults = Defaults {
        store_root: store.path(),
        dist: Some(dist.path().to_path_buf()),
    };
    let found = choose(
        None,
        Some(WheelSource::PyPi { version: None }),
        Arch::Aarch64,
        &defaults,
        |wanted| {
            assert_eq!(wanted, [(Kind::Coglet, None)]);
            Ok(vec![pypi_package("coglet", "0.17.1")])
        },
    )
    .unwrap();
    assert_eq!(found[0].name, "cog");
    assert_eq!(found[1].name, "coglet");
}
