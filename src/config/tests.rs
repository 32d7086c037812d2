//! End-to-end tests of `load`: fixtures under `tests/fixtures/config/`, every error and warning
//! string Cog prints, completion, and the `run.cog.config` label.

use std::path::{Path, PathBuf};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn load_fixture(name: &str) -> Result<Loaded, ConfigError> {
    let dir = fixture(name);
    load(&dir, &dir.join("cog.yaml"))
}

/// Loads `yaml` as `cog.yaml` in a fresh project with the given extra files.
fn load_yaml_with(yaml: &str, files: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    load_str(dir.path(), Path::new("cog.yaml"), yaml)
}

fn load_yaml(yaml: &str) -> Result<Loaded, ConfigError> {
    load_yaml_with(yaml, &[])
}

fn error_text(yaml: &str) -> String {
    load_yaml(yaml).unwrap_err().to_string()
}

fn warnings_text(loaded: &Loaded) -> Vec<String> {
    loaded.warnings.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------- finding the project

#[test]
fn find_project_walks_up() {
    let start = fixture("nested/sub/dir");
    let (project, path) = find_project(&start, None).unwrap();
    assert_eq!(project, fixture("nested"));
    assert_eq!(path, fixture("nested/cog.yaml"));
}

#[test]
fn find_project_error_names_the_start_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = find_project(dir.path(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cog.yaml not found in {} (or in any parent directories)",
            dir.path().display()
        )
    );
}

#[test]
fn find_project_honours_the_file_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("other.yaml"),
        "build:\n  python_version: '3.12'\n",
    )
    .unwrap();
    let (project, path) = find_project(dir.path(), Some("other.yaml")).unwrap();
    assert_eq!(
        (project.as_path(), path.as_path()),
        (dir.path(), dir.path().join("other.yaml").as_path())
    );
    let err = find_project(dir.path(), Some("missing.yaml")).unwrap_err();
    assert!(
        err.to_string().starts_with("missing.yaml not found in "),
        "{err}"
    );
    let absolute = dir.path().join("other.yaml");
    assert_eq!(
        find_project(Path::new("/"), Some(absolute.to_str().unwrap()))
            .unwrap()
            .1,
        absolute
    );
}

// ---------------------------------------------------------------- fixtures that load

#[test]
fn empty_file_is_valid() {
    let loaded = load_yaml("").unwrap();
    assert_eq!(loaded.config.build, Build::default());
    assert!(loaded.warnings.is_empty());
    assert_eq!(loaded.config.label_json(None), r#"{"build":{}}"#);
}

#[test]
fn minimal_fixture() {
    let loaded = load_fixture("minimal").unwrap();
    assert_eq!(loaded.config.python_version(), "3.12");
    assert_eq!(loaded.config.predict.as_deref(), Some("run.py:Runner"));
    assert!(loaded.warnings.is_empty());
    insta::assert_snapshot!(loaded.config.label_json(None), @r#"{"build":{"python_version":"3.12"},"predict":"run.py:Runner"}"#);
}

#[test]
fn full_fixture() {
    let loaded = load_fixture("full").unwrap();
    let config = &loaded.config;
    assert_eq!(config.build.python_version, "3.11");
    assert_eq!(
        config.build.requirements.lines,
        vec!["numpy==1.26.4", "pillow>=10  "]
    );
    assert_eq!(
        config.build.requirements.file,
        Some(fixture("full").join("requirements.txt"))
    );
    assert_eq!(config.build.run[1].mounts[0].id, "pip");
    assert_eq!(config.build.sdk_version.as_deref(), Some("0.17.1"));
    assert_eq!(
        config.parsed_environment.get("EQUALS").map(String::as_str),
        Some("a=b")
    );
    assert_eq!(config.max_concurrency(), 4);
    insta::assert_snapshot!(warnings_text(&loaded).join("\n"), @r#"
    deprecated field "predict": use "run" instead
    deprecated field "concurrency.max": use "@cog.concurrent(max=...)" instead
    "#);
    insta::assert_snapshot!("full_label", config.label_json(None));
}

#[test]
fn label_uses_the_effective_concurrency() {
    let loaded = load_fixture("minimal").unwrap();
    assert_eq!(
        loaded.config.label_json(Some(8)),
        r#"{"build":{"python_version":"3.12"},"predict":"run.py:Runner","concurrency":{"max":8}}"#
    );
    let loaded = load_fixture("full").unwrap();
    assert!(
        loaded
            .config
            .label_json(Some(2))
            .contains(r#""concurrency":{"max":2}"#)
    );
}

#[test]
fn removed_fields_are_ignored() {
    let loaded = load_fixture("removed-fields").unwrap();
    assert!(loaded.warnings.is_empty());
    assert_eq!(
        loaded.config.label_json(None),
        r#"{"build":{"python_version":"3.12"},"predict":"run.py:Runner"}"#
    );
}

#[test]
fn gpu_torch_resolves_latest_cuda_for_torch() {
    let loaded = load_fixture("gpu-torch").unwrap();
    let build = &loaded.config.build;
    assert_eq!(
        (build.cuda.as_deref(), build.cudnn.as_deref()),
        (Some("12.1"), Some("8"))
    );
    assert_eq!(
        loaded.config.cuda_base_image().as_deref(),
        Some("nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04")
    );
    insta::assert_snapshot!("gpu_torch_label", loaded.config.label_json(None));
    let (requirements, warnings) = loaded.config.python_requirements_for_arch("amd64", &[]);
    assert!(warnings.is_empty());
    insta::assert_snapshot!("gpu_torch_requirements", requirements);
}

#[test]
fn cpu_torch_uses_the_cpu_index() {
    let loaded = load_yaml_with(
        "build:\n  python_version: '3.11'\n  python_requirements: requirements.txt\n",
        &[(
            "requirements.txt",
            "torch==2.1.0\ntorchvision==0.16.0\nnumpy\n",
        )],
    )
    .unwrap();
    let (amd64, _) = loaded.config.python_requirements_for_arch(
        "amd64",
        &["pydantic==2.7.0".to_owned(), "numpy==2".to_owned()],
    );
    insta::assert_snapshot!("cpu_torch_requirements_amd64", amd64);
    let (arm64, _) = loaded.config.python_requirements_for_arch("arm64", &[]);
    assert!(arm64.contains("torch==2.1.0\n"), "{arm64}");
}

#[test]
fn gpu_tensorflow_takes_cuda_and_cudnn_from_the_matrix() {
    let loaded = load_fixture("gpu-tensorflow").unwrap();
    let build = &loaded.config.build;
    assert_eq!(
        (build.cuda.as_deref(), build.cudnn.as_deref()),
        (Some("11.8"), Some("8"))
    );
    assert_eq!(
        warnings_text(&loaded),
        vec![
            r#"deprecated field "build.python_packages": use "build.python_requirements" instead"#
        ]
    );
    let (requirements, _) = loaded.config.python_requirements_for_arch("amd64", &[]);
    assert_eq!(requirements, "tensorflow==2.12.0");
}

#[test]
fn gpu_without_frameworks_defaults_to_cuda_11_8() {
    let loaded = load_yaml("build:\n  gpu: true\n  python_version: '3.12'\n").unwrap();
    assert_eq!(loaded.config.build.cuda.as_deref(), Some("11.8"));
    assert_eq!(loaded.config.build.cudnn.as_deref(), Some("8"));
}

#[test]
fn explicit_cuda_mismatching_torch_only_warns() {
    let loaded = load_yaml("build:\n  gpu: true\n  cuda: '11.7'\n  python_version: '3.11'\n  python_packages: ['torch==2.3.0']\n").unwrap();
    insta::assert_snapshot!(warnings_text(&loaded).join("\n"), @r#"
    deprecated field "build.python_packages": use "build.python_requirements" instead
    Cog doesn't know if CUDA 11.7 is compatible with PyTorch 2.3.0. This might cause CUDA problems.
    Try 12.1 instead?
    "#);
}

#[test]
fn torch_cuda_modifier_forces_that_cuda() {
    let loaded = load_yaml("build:\n  gpu: true\n  python_version: '3.11'\n  python_packages: ['torch==2.1.0+cu118']\n").unwrap();
    assert_eq!(loaded.config.build.cuda.as_deref(), Some("11.8"));
}

#[test]
fn local_artifacts_resolve_inside_the_project() {
    let loaded = load_fixture("local-artifacts").unwrap();
    let artifacts = &loaded.config.build.requirements.local_artifacts;
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].line, "../dist/mypkg-1.0-py3-none-any.whl");
    assert_eq!(
        artifacts[0].path,
        fixture("local-artifacts/dist/mypkg-1.0-py3-none-any.whl")
            .canonicalize()
            .unwrap()
    );
}

#[test]
fn managed_packages_are_stripped_with_a_warning() {
    let loaded = load_fixture("managed-packages").unwrap();
    assert_eq!(loaded.config.build.requirements.lines, vec!["numpy==2.0.0"]);
    insta::assert_snapshot!(warnings_text(&loaded).join("\n"), @r#"
    Ignoring "cog==0.16.8" in requirements.txt: cog and coglet are installed by Cog itself
    Ignoring "coglet" in requirements.txt: cog and coglet are installed by Cog itself
    "#);
}

#[test]
fn weights_fixture_and_label() {
    let loaded = load_fixture("weights").unwrap();
    assert_eq!(loaded.config.weights.len(), 2);
    insta::assert_snapshot!("weights_label", loaded.config.label_json(None));
}

// ---------------------------------------------------------------- every error string

#[test]
fn many_errors_are_all_reported_one_per_line() {
    let err = load_fixture("many-errors").unwrap_err();
    let path = fixture("many-errors").join("cog.yaml");
    let text = err.to_string();
    let body = text.strip_prefix(&format!("{}: ", path.display())).unwrap();
    insta::assert_snapshot!(body);
}

#[test]
fn yaml_syntax_error() {
    insta::assert_snapshot!(error_text("build:\n  python_version: \"3.12\"\n   gpu: true\n"), @"failed to parse cog.yaml: invalid YAML: yaml: while parsing a block mapping at line 2, column 3: line 3, column 4: did not find expected key");
}

#[test]
fn yaml_type_errors() {
    insta::assert_snapshot!(error_text("build:\n  gpu: \"true\"\n  python_version: [3, 12]\n  system_packages: ffmpeg\n"), @r"
    failed to parse cog.yaml: invalid YAML: yaml: construct errors:
      line 2: cannot construct !!str `true` into bool
      line 3: cannot construct !!seq into string
      line 4: cannot construct !!str `ffmpeg` into []string
    ");
    insta::assert_snapshot!(error_text("- build\n"), @r"
    failed to parse cog.yaml: invalid YAML: yaml: construct errors:
      line 1: cannot construct !!seq into config.configFile
    ");
}

#[test]
fn run_item_type_error() {
    insta::assert_snapshot!(error_text("build:\n  python_version: '3.12'\n  run:\n    - true\n"), @r"
    failed to parse cog.yaml: invalid YAML: yaml: construct errors:
      line 4: unexpected type bool for runItemFile
    ");
}

#[test]
fn python_version_errors() {
    let cases = [
        (
            "build:\n  gpu: false\n",
            "schema error in \"build\": python_version is required\ninvalid build.python_version: python_version is required. Add it to the build section of your cog.yaml, e.g. `python_version: \"3.13\"`",
        ),
        (
            "build:\n  python_version: ''\n",
            "invalid build.python_version: python_version is required. Add it to the build section of your cog.yaml, e.g. `python_version: \"3.13\"`",
        ),
        (
            "build:\n  python_version: 3.9\n",
            "invalid build.python_version \"3.9\": minimum supported Python version is 3.10",
        ),
        (
            "build:\n  python_version: 3\n",
            "invalid build.python_version \"3\": must include major and minor version (e.g., '3.11')",
        ),
        (
            "build:\n  python_version: x.11\n",
            "invalid build.python_version \"x.11\": invalid major version number",
        ),
        (
            "build:\n  python_version: 3.x\n",
            "invalid build.python_version \"3.x\": invalid minor version number",
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(error_text(yaml), format!("cog.yaml: {want}"), "{yaml}");
    }
    // No build section: no python_version check at all.
    assert!(load_yaml("run: run.py:Runner\n").is_ok());
    // 3.10 as a number stays "3.10".
    assert_eq!(
        load_yaml("build:\n  python_version: 3.10\n")
            .unwrap()
            .config
            .build
            .python_version,
        "3.10"
    );
}

#[test]
fn requirements_errors() {
    assert_eq!(
        error_text("build:\n  python_version: '3.12'\n  python_requirements: missing.txt\n"),
        "cog.yaml: invalid build.python_requirements \"missing.txt\": file does not exist"
    );
    let err = load_yaml_with(
        "build:\n  python_version: '3.12'\n  python_requirements: r.txt\n  python_packages: [numpy]\n",
        &[("r.txt", "numpy\n")],
    )
    .unwrap_err();
    assert_eq!(
        err.issues()[0].to_string(),
        "invalid build: only one of python_packages or python_requirements can be set, not both"
    );
}

#[test]
fn local_artifact_errors() {
    let yaml = "build:\n  python_version: '3.12'\n  python_requirements: requirements.txt\n";
    let err = load_yaml_with(yaml, &[("requirements.txt", "./missing.whl\n")]).unwrap_err();
    assert!(
        err.issues()[0].to_string().starts_with("invalid build.python_requirements \"requirements.txt\": local package artifact \"./missing.whl\" does not exist"),
        "{err}"
    );
    let err = load_yaml_with(yaml, &[("requirements.txt", "/etc/hostname.tar.gz\n")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("local package artifact \"/etc/hostname.tar.gz\" does not exist"),
        "{err}"
    );
    let outside = tempfile::tempdir().unwrap();
    let wheel = outside.path().join("x-1.0-py3-none-any.whl");
    std::fs::write(&wheel, "x").unwrap();
    let err = load_yaml_with(
        yaml,
        &[("requirements.txt", &format!("{}\n", wheel.display()))],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("must be inside the project directory"),
        "{err}"
    );
    let err = load_yaml_with(
        yaml,
        &[("requirements.txt", "./dir.whl\n"), ("dir.whl/x", "")],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("local package artifact \"./dir.whl\" is not a regular file"),
        "{err}"
    );
    let err = load_yaml_with(yaml, &[("requirements.txt", "pkg @ ./pkg.whl\n")]).unwrap_err();
    assert!(err.to_string().ends_with("local direct reference requirements (`name @ path`) are not supported; list the path directly instead: pkg @ ./pkg.whl"), "{err}");
}

#[test]
fn cuda_errors() {
    let cases = [
        (
            "11",
            "invalid build.cuda \"11\": must include both major and minor versions (e.g., '11.8')",
        ),
        (
            "10.2",
            "invalid build.cuda \"10.2\": minimum supported CUDA version is 11",
        ),
        (
            "x.1",
            "invalid build.cuda \"x.1\": invalid major version number",
        ),
    ];
    for (cuda, want) in cases {
        assert_eq!(
            error_text(&format!(
                "build:\n  python_version: '3.12'\n  cuda: '{cuda}'\n"
            )),
            format!("cog.yaml: {want}")
        );
    }
    assert_eq!(
        error_text(
            "build:\n  gpu: true\n  python_version: '3.12'\n  cuda: '11.8.0'\n  cudnn: '7'\n"
        ),
        "cog.yaml: CUDA 11.8.0 is incompatible with CuDNN 7: compatible CuDNN versions are: 8, 8, 8"
    );
    assert_eq!(
        error_text(
            "build:\n  gpu: true\n  python_version: '3.10'\n  cuda: '12.1'\n  python_packages: ['tensorflow==2.12.0']\n"
        ),
        "cog.yaml: TensorFlow 2.12.0 is incompatible with CUDA 12.1: TensorFlow 2.12.0 requires CUDA 11.8"
    );
    assert_eq!(
        error_text("build:\n  gpu: true\n  python_version: '3.12'\n  cuda: '12.7'\n"),
        "cog.yaml: CUDA 12.7 is not supported by Cog"
    );
}

#[test]
fn framework_resolution_errors() {
    assert_eq!(
        error_text("build:\n  gpu: true\n  python_version: '3.12'\n  python_packages: ['torch']\n"),
        "cog.yaml: torch version must be specified when using CUDA"
    );
    insta::assert_snapshot!(error_text("build:\n  gpu: true\n  python_version: '3.12'\n  python_packages: ['torch==0.4.0']\n"), @r"
    cog.yaml: Cog doesn't know what CUDA version is compatible with torch==0.4.0. You might need to upgrade Cog: https://github.com/replicate/cog#upgrade

    If that doesn't work, you need to set the 'cuda' option in cog.yaml to set what version to use. You might be able to find this out from https://pytorch.org/
    ");
    assert!(
        error_text("build:\n  gpu: true\n  python_version: '3.12'\n  python_packages: ['tensorflow==1.0.0']\n")
            .starts_with("cog.yaml: Cog doesn't know what CUDA version is compatible with tensorflow==1.0.0.")
    );
    assert_eq!(
        error_text(
            "build:\n  gpu: true\n  python_version: '3.10'\n  cudnn: '9'\n  python_packages: ['tensorflow==2.12.0']\n"
        ),
        "cog.yaml: The specified cuDNN version 9 is not compatible with tensorflow==2.12.0.\nCompatible cuDNN version is: 8"
    );
}

#[test]
fn run_predict_train_errors() {
    assert_eq!(
        error_text("run: run.py:Runner\npredict: predict.py:Predictor\n"),
        "cog.yaml: schema error in \"cog.yaml\": Must not validate the schema (not)\ninvalid run: only one of run or predict can be set"
    );
    assert_eq!(
        error_text("run: run.py\n"),
        "cog.yaml: invalid run \"run.py\": must be in the form 'run.py:Runner'"
    );
    assert_eq!(
        error_text("predict: predict\n"),
        "cog.yaml: invalid predict \"predict\": must be in the form 'run.py:Runner'"
    );
    assert_eq!(
        error_text("train: a.py:b.py:c\n"),
        "cog.yaml: invalid train \"a.py:b.py:c\": must be in the form 'train.py:Trainer'"
    );
    let loaded = load_yaml("predict: predict.py:Predictor\n").unwrap();
    assert_eq!(
        warnings_text(&loaded),
        vec![r#"deprecated field "predict": use "run" instead"#]
    );
    assert_eq!(
        loaded.config.label_json(None),
        r#"{"build":{},"predict":"predict.py:Predictor"}"#
    );
}

#[test]
fn run_command_with_newline() {
    insta::assert_snapshot!(error_text("build:\n  python_version: '3.12'\n  run:\n    - |\n      apt-get update\n      apt-get install -y curl\n"), @r"
    cog.yaml: One of the commands in 'run' contains a new line, which won't work. You need to create a new list item in YAML prefixed with '-' for each command.

    This is the offending line: apt-get update
    apt-get install -y curl
    ");
}

#[test]
fn schema_errors() {
    assert_eq!(
        error_text(
            "build:\n  python_version: '3.12'\n  run:\n    - command: echo\n      mounts:\n        - type: bind\n          id: x\n          target: /x\n"
        ),
        "cog.yaml: schema error in \"build.run.0.mounts.0.type\": build.run.0.mounts.0.type must be one of the following: \"secret\""
    );
    assert_eq!(
        error_text(
            "build:\n  python_version: '3.12'\n  run:\n    - command: echo\n      mounts:\n        - type: secret\n          target: /x\n"
        ),
        "cog.yaml: schema error in \"build.run.0.mounts.0\": id is required"
    );
    assert_eq!(
        error_text("concurrency: {}\n"),
        "cog.yaml: schema error in \"concurrency\": max is required"
    );
}

#[test]
fn environment_errors() {
    assert_eq!(
        error_text("environment:\n  - PATH=/bin\n"),
        "cog.yaml: invalid environment: environment variable \"PATH\" is not allowed: reserved for internal use"
    );
    assert_eq!(
        error_text("environment:\n  - NVIDIA_VISIBLE_DEVICES=all\n"),
        "cog.yaml: invalid environment: environment variable \"NVIDIA_VISIBLE_DEVICES\" is not allowed: reserved for internal use"
    );
    assert_eq!(
        error_text("environment:\n  - A=1\n  - A=2\n"),
        "cog.yaml: invalid environment: environment variable \"A\" is already defined"
    );
    assert_eq!(
        error_text("environment:\n  - 'NOT VALID'\n"),
        "cog.yaml: schema error in \"environment.0\": Does not match pattern '^[A-Za-z_][A-Za-z0-9_]*=.*$'\ninvalid environment: environment variable \"NOT VALID\" is not in the KEY=VALUE format"
    );
}

#[test]
fn concurrency_errors_and_warning() {
    assert_eq!(
        error_text("concurrency:\n  max: 0\n"),
        "cog.yaml: invalid concurrency.max \"0\": must be at least 1"
    );
    assert_eq!(
        error_text("build:\n  python_version: '3.10'\nconcurrency:\n  max: 2\n"),
        "cog.yaml: invalid concurrency.max \"2\": concurrency requires Python 3.11 or higher"
    );
    let loaded = load_yaml("run: run.py:Runner\nconcurrency:\n  max: 2\n").unwrap();
    assert_eq!(
        warnings_text(&loaded),
        vec![r#"deprecated field "concurrency.max": use "@cog.concurrent(max=...)" instead"#]
    );
}

#[test]
fn model_errors() {
    assert_eq!(
        error_text("model: acme/model\nimage: acme/image\n"),
        "cog.yaml: invalid model: 'model' and 'image' cannot both be set"
    );
    assert_eq!(
        error_text("model: registry.example.com/acme/my-model:v1\n"),
        "cog.yaml: invalid model \"registry.example.com/acme/my-model:v1\": must be a bare repository — tags and digests are not allowed"
    );
    assert_eq!(
        error_text("model: Registry.Example.Com/ACME/Model\n"),
        "cog.yaml: invalid model \"Registry.Example.Com/ACME/Model\": invalid repository: repository name must be lowercase"
    );
    assert_eq!(
        load_yaml("model: localhost:5000/acme/m\n")
            .unwrap()
            .config
            .model
            .as_deref(),
        Some("localhost:5000/acme/m")
    );
}

#[test]
fn weights_errors() {
    let weights = "weights:\n  - name: base\n    target: /src/w\n    source: {uri: hf://a/b}\n";
    assert_eq!(
        error_text(weights),
        "cog.yaml: invalid weights: weights require 'model' in cog.yaml"
    );
    assert_eq!(
        error_text(&format!("image: acme/x\n{weights}")),
        "cog.yaml: invalid weights: weights require 'model', not 'image' — rename 'image' to 'model'"
    );
    insta::assert_snapshot!(error_text(
        "model: acme/x\nweights:\n  - name: Base\n    target: src/w\n    source: {uri: hf://a/b, include: ['!*.bin', ' ']}\n  - name: lora\n    target: /src/w\n    source: {uri: hf://a/c}\n  - name: lora\n    target: /src/w/sub\n    source: [{uri: hf://a/d, exclude: ['dir\\*.bin']}, {uri: 'https://x/y'}]\n  - name: x\n    target: /\n    source:\n"
    ));
}

#[test]
fn deprecated_build_fields_warn() {
    let loaded = load_yaml("build:\n  python_version: '3.12'\n  python_packages: [numpy]\n  pre_install: ['echo hi']\n").unwrap();
    insta::assert_snapshot!(warnings_text(&loaded).join("\n"), @r#"
    deprecated field "build.python_packages": use "build.python_requirements" instead
    deprecated field "build.pre_install": use "build.run" instead
    "#);
    assert_eq!(loaded.config.build.requirements.lines, vec!["numpy"]);
    let commands: Vec<String> = loaded
        .config
        .build
        .commands()
        .into_iter()
        .map(|c| c.command)
        .collect();
    assert_eq!(commands, vec!["echo hi"]);
}

#[test]
fn label_escapes_html_like_go() {
    let loaded = load_yaml("build:\n  python_version: '3.12'\n  run: ['echo \"<a & b>\"']\nenvironment: ['X=\u{2028}']\n").unwrap();
    assert_eq!(
        loaded.config.label_json(None),
        r#"{"build":{"python_version":"3.12","run":[{"command":"echo \"\u003ca \u0026 b\u003e\""}]},"environment":["X=\u2028"]}"#
    );
}

#[test]
fn error_display_names_the_file() {
    let dir = fixture("many-errors");
    let err = load(&dir, &dir.join("cog.yaml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", dir.join("cog.yaml").display()))
    );
    let err = load(&dir, &dir.join("absent.yaml")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("absent.yaml"), "{err}");
}

// ---------------------------------------------------------------- determinism

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("3.12".to_owned()),
            Just("3.9".to_owned()),
            Just("'3.11'".to_owned()),
            Just("true".to_owned()),
            Just("yes".to_owned()),
            Just("11.8".to_owned()),
            Just("~".to_owned()),
            Just("[a, b]".to_owned()),
            Just("{k: v}".to_owned()),
            "[a-zA-Z0-9_=./:]{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn loading_is_deterministic(
            gpu in scalar(), python in scalar(), cuda in scalar(), run in scalar(), env in scalar(), max in scalar()
        ) {
            let yaml = format!(
                "build:\n  gpu: {gpu}\n  python_version: {python}\n  cuda: {cuda}\nrun: {run}\nenvironment: [{env}]\nconcurrency:\n  max: {max}\n"
            );
            let first = load_yaml(&yaml);
            let second = load_yaml(&yaml);
            match (first, second) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(a.config.label_json(None), b.config.label_json(None));
                    prop_assert_eq!(warnings_text(&a), warnings_text(&b));
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "differs: {:?} vs {:?}", a.is_ok(), b.is_ok()),
            }
        }
    }
}
