//! Table-driven: every row of Cog's CUDA, torch and TensorFlow matrices against Cog's rule,
//! written here a second time, plainly, from the reference (section 5.2 and 5.4), plus Cog's own
//! test cases.
use std::path::Path;

use serde_json::Value;

use super::*;
use crate::config;

fn matrix(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/config/data")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn numbers(v: &str) -> Vec<u64> {
    v.split('+')
        .next()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Cog's rule for `nvidia/cuda`: CUDA at minor level (and patch when given), exact cuDNN, then
/// the highest patch, then the newest Ubuntu.
fn expected_cuda_image(cuda: &str, cudnn: &str) -> Option<String> {
    let want = numbers(cuda);
    let mut best: Option<(Vec<u64>, Vec<u64>, String)> = None;
    for row in matrix("cuda_compatibility.json") {
        let row_cuda = numbers(row["CUDA"].as_str().unwrap());
        if row_cuda[..2] != want[..2]
            || (want.len() > 2 && row_cuda[2] != want[2])
            || row["CuDNN"].as_str().unwrap() != cudnn
        {
            continue;
        }
        let key = (
            row_cuda,
            numbers(row["Ubuntu"].as_str().unwrap()),
            format!("nvidia/cuda:{}", row["Tag"].as_str().unwrap()),
        );
        if best
            .as_ref()
            .is_none_or(|b| (&key.0, &key.1) > (&b.0, &b.1))
        {
            best = Some(key);
        }
    }
    best.map(|b| b.2)
}

fn gpu_request<'a>(cuda: &'a str, cudnn: &'a str) -> BaseRequest<'a> {
    BaseRequest {
        gpu: true,
        cuda: Some(cuda),
        cudnn: Some(cudnn),
        python_version: Some("3.11"),
        registry_host: DEFAULT_REGISTRY_HOST,
        ..BaseRequest::default()
    }
}

fn reference(choice: &BaseChoice) -> &str {
    match &choice.base {
        BaseImage::Registry { reference } => reference,
        other => panic!("not a registry base: {other:?}"),
    }
}

#[test]
fn every_cuda_row_gives_cogs_image() {
    let rows = matrix("cuda_compatibility.json");
    assert_eq!(rows.len(), 83);
    for row in rows {
        let cudnn = row["CuDNN"].as_str().unwrap();
        let full = row["CUDA"].as_str().unwrap();
        let v = numbers(full);
        let minor = format!("{}.{}", v[0], v[1]);
        for cuda in [full, minor.as_str()] {
            let want = expected_cuda_image(cuda, cudnn).unwrap();
            let choice = choose(&gpu_request(cuda, cudnn)).unwrap();
            assert_eq!(reference(&choice), want, "CUDA {cuda} cuDNN {cudnn}");
            assert!(choice.reason.contains("nvidia/cuda"), "{}", choice.reason);
        }
    }
}

#[test]
fn cogs_own_cases() {
    let cases = [
        ("11.8", "8", "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04"),
        ("11.6", "8", "nvidia/cuda:11.6.2-cudnn8-devel-ubuntu20.04"),
        ("12.1", "8", "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04"),
    ];
    for (cuda, cudnn, want) in cases {
        assert_eq!(reference(&choose(&gpu_request(cuda, cudnn)).unwrap()), want);
    }
    let err = choose(&gpu_request("11.8", "7")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no matching base image for CUDA 11.8 and CuDNN 7"
    );
    // Cog's TestCUDABaseImageTag: tensorflow 2.12.0 + gpu.
    let loaded = load("build:\n  gpu: true\n  python_version: '3.10'\n  python_packages: ['tensorflow==2.12.0']\n").unwrap();
    let choice = choose(&BaseRequest::for_config(&loaded.config, None)).unwrap();
    assert_eq!(
        reference(&choice),
        "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04"
    );
    // The reference's example: torch 2.0.1 + gpu.
    let loaded = load(
        "build:\n  gpu: true\n  python_version: '3.11'\n  python_packages: ['torch==2.0.1']\n",
    )
    .unwrap();
    let torch = loaded.config.package_version("torch");
    let choice = choose(&BaseRequest::for_config(&loaded.config, torch.as_deref())).unwrap();
    assert_eq!(
        reference(&choice),
        "nvidia/cuda:11.8.0-cudnn8-devel-ubuntu22.04"
    );
    assert!(choice.reason.contains("torch==2.0.1"), "{}", choice.reason);
}

fn load(yaml: &str) -> Result<config::Loaded, config::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    config::load_str(dir.path(), Path::new("cog.yaml"), yaml)
}

/// CUDA versions (`X.Y`) with at least one `nvidia/cuda` image.
fn cudas_with_images() -> Vec<String> {
    matrix("cuda_compatibility.json")
        .iter()
        .map(|row| {
            let v = numbers(row["CUDA"].as_str().unwrap());
            format!("{}.{}", v[0], v[1])
        })
        .collect()
}

fn latest_cudnn(cuda: &str) -> String {
    let mut cudnns: Vec<u64> = matrix("cuda_compatibility.json")
        .iter()
        .filter(|row| {
            let v = numbers(row["CUDA"].as_str().unwrap());
            format!("{}.{}", v[0], v[1]) == cuda
        })
        .map(|row| row["CuDNN"].as_str().unwrap().parse().unwrap())
        .collect();
    cudnns.sort_unstable();
    cudnns.last().unwrap().to_string()
}

#[test]
fn every_torch_row_gives_cogs_base_and_index() {
    let with_images = cudas_with_images();
    let rows = matrix("torch_compatibility.json");
    assert_eq!(rows.len(), 96);
    for row in &rows {
        let torch = row["Torch"].as_str().unwrap();
        let version = torch.split('+').next().unwrap();
        let Some(cuda) = row["CUDA"].as_str() else {
            // CPU rows: the `/cpu` index (or the row's find-links) and torch without `+cpu`.
            let yaml = format!(
                "build:\n  python_version: '3.11'\n  python_packages: ['torch=={version}']\n"
            );
            let loaded = load(&yaml).unwrap();
            let (requirements, _) = loaded.config.python_requirements_for_arch("amd64", &[]);
            assert_eq!(requirements, expected_requirements(row, version), "{torch}");
            let choice = choose(&BaseRequest {
                python_version: Some("3.11"),
                registry_host: DEFAULT_REGISTRY_HOST,
                ..BaseRequest::default()
            })
            .unwrap();
            assert_eq!(reference(&choice), "python:3.11-slim");
            continue;
        };
        let yaml = format!(
            "build:\n  gpu: true\n  cuda: '{cuda}'\n  python_version: '3.11'\n  python_packages: ['torch=={version}']\n"
        );
        if !with_images.iter().any(|c| c == cuda) {
            // No base image for this CUDA: Cog refuses it (below 11, as invalid).
            let err = load(&yaml).unwrap_err().to_string();
            let want = if numbers(cuda)[0] < 11 {
                format!("invalid build.cuda \"{cuda}\": minimum supported CUDA version is 11")
            } else {
                format!("CUDA {cuda} is not supported by Cog")
            };
            assert!(err.contains(&want), "{torch}: {err}");
            continue;
        }
        let loaded = load(&yaml).unwrap();
        let cudnn = latest_cudnn(cuda);
        assert_eq!(loaded.config.build.cudnn.as_deref(), Some(cudnn.as_str()));
        let choice = choose(&BaseRequest::for_config(&loaded.config, Some(version))).unwrap();
        assert_eq!(
            Some(reference(&choice).to_owned()),
            expected_cuda_image(cuda, &cudnn),
            "{torch}"
        );
        // The index: the row for this version with the highest CUDA not above build.cuda.
        let best = rows
            .iter()
            .filter(|r| {
                r["Torch"].as_str().unwrap().split('+').next() == Some(version)
                    && r["CUDA"].as_str().is_some_and(|c| {
                        with_images.iter().any(|w| w == c) && numbers(c) <= numbers(cuda)
                    })
            })
            .max_by_key(|r| numbers(r["CUDA"].as_str().unwrap()))
            .unwrap();
        let (requirements, _) = loaded.config.python_requirements_for_arch("amd64", &[]);
        assert_eq!(
            requirements,
            expected_requirements(best, version),
            "{torch}"
        );
    }
}

/// What Cog writes for `torch==version` when `row` is the matrix row it picks: the row's
/// find-links, then its index, then torch without a local version.
fn expected_requirements(row: &Value, version: &str) -> String {
    let mut lines = Vec::new();
    let find_links = row["FindLinks"].as_str().unwrap();
    if !find_links.is_empty() {
        lines.push(format!("--find-links {find_links}"));
    }
    let index = row["ExtraIndexURL"].as_str().unwrap();
    if !index.is_empty() {
        lines.push(format!("--extra-index-url {index}"));
    }
    lines.push(format!("torch=={version}"));
    lines.join("\n")
}

#[test]
fn unpinned_cuda_takes_the_newest_for_the_torch_version() {
    let with_images = cudas_with_images();
    let rows = matrix("torch_compatibility.json");
    for row in &rows {
        let version = row["Torch"].as_str().unwrap().split('+').next().unwrap();
        let newest = rows
            .iter()
            .filter(|r| r["Torch"].as_str().unwrap().split('+').next() == Some(version))
            .filter_map(|r| r["CUDA"].as_str())
            .filter(|c| with_images.iter().any(|w| w == c))
            .max_by_key(|c| numbers(c));
        let yaml = format!(
            "build:\n  gpu: true\n  python_version: '3.11'\n  python_packages: ['torch=={version}']\n"
        );
        if let Some(cuda) = newest {
            let loaded = load(&yaml).unwrap();
            assert_eq!(loaded.config.build.cuda.as_deref(), Some(cuda), "{version}");
            let torch = Some(version);
            let choice = choose(&BaseRequest::for_config(&loaded.config, torch)).unwrap();
            assert_eq!(
                Some(reference(&choice).to_owned()),
                expected_cuda_image(cuda, &latest_cudnn(cuda)),
                "{version}"
            );
        } else {
            let err = load(&yaml).unwrap_err().to_string();
            assert!(
                err.contains("Cog doesn't know what CUDA version is compatible with torch"),
                "{version}: {err}"
            );
        }
    }
    let err = load("build:\n  gpu: true\n  python_version: '3.11'\n  python_packages: ['torch']\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("torch version must be specified when using CUDA"),
        "{err}"
    );
}

#[test]
fn every_tensorflow_row_gives_cogs_base() {
    let rows = matrix("tf_compatibility.json");
    assert_eq!(rows.len(), 18);
    for row in rows {
        let tf = row["TF"].as_str().unwrap();
        let v = numbers(row["CUDA"].as_str().unwrap());
        let cuda = format!("{}.{}", v[0], v[1]);
        let cudnn = numbers(row["CuDNN"].as_str().unwrap())[0].to_string();
        let yaml = format!(
            "build:\n  gpu: true\n  python_version: '3.10'\n  python_packages: ['tensorflow=={tf}']\n"
        );
        let loaded = load(&yaml).unwrap();
        assert_eq!(
            loaded.config.build.cuda.as_deref(),
            Some(cuda.as_str()),
            "{tf}"
        );
        assert_eq!(
            loaded.config.build.cudnn.as_deref(),
            Some(cudnn.as_str()),
            "{tf}"
        );
        let result = choose(&BaseRequest::for_config(&loaded.config, None));
        match expected_cuda_image(&cuda, &cudnn) {
            Some(want) => assert_eq!(reference(&result.unwrap()), want, "{tf}"),
            None => assert_eq!(
                result.unwrap_err().to_string(),
                format!("no matching base image for CUDA {cuda} and CuDNN {cudnn}"),
                "{tf}"
            ),
        }
        let (requirements, _) = loaded.config.python_requirements_for_arch("amd64", &[]);
        let gpu_package = row["TFGPUPackage"].as_str().unwrap();
        assert_eq!(requirements, gpu_package, "{tf}");
        // A cuDNN the row does not list is Cog's error.
        let other = if cudnn == "9" { "8" } else { "9" };
        let yaml = format!(
            "build:\n  gpu: true\n  cudnn: '{other}'\n  python_version: '3.10'\n  python_packages: ['tensorflow=={tf}']\n"
        );
        let err = load(&yaml).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "The specified cuDNN version {other} is not compatible with tensorflow=={tf}.\nCompatible cuDNN version is: {cudnn}"
            )),
            "{tf}: {err}"
        );
    }
}

#[test]
fn cog_base_image_names_follow_cog() {
    let host = DEFAULT_REGISTRY_HOST;
    assert_eq!(
        cog_base_image_for(host, "12.4", "3.13", "2.6.0").unwrap(),
        "r8.im/cog-base:cuda12.4-python3.13-torch2.6.0"
    );
    assert_eq!(
        cog_base_image_for(host, "", "3.13", "").unwrap(),
        "r8.im/cog-base:python3.13"
    );
    // Torch 2.3 is normalised to the newest 2.3 patch with a CPU row for Python 3.11.
    assert_eq!(
        cog_base_image_for(host, "", "3.11.4", "2.3").unwrap(),
        "r8.im/cog-base:python3.11-torch2.3.1"
    );
    assert_eq!(
        cog_base_image_name(host, "", "", ""),
        "r8.im/cog-base:latest"
    );
    assert_eq!(
        cog_base_image_for("ghcr.io/replicate", "", "3.12", "").unwrap(),
        "ghcr.io/replicate/cog-base:python3.12"
    );
    let err = cog_base_image_for(host, "11.2", "3.11", "").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported base image configuration: CUDA: 11.2 / Python: 3.11 / Torch: (none)"
    );
    let err = cog_base_image_for(host, "", "3.9", "").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported base image configuration: CUDA: (none) / Python: 3.9 / Torch: (none)"
    );
}

#[test]
fn flags_pick_and_exclude_as_cog_does() {
    let assembled = BaseImage::Scratch;
    let mut request = gpu_request("12.1", "8");
    request.assembled = Some(assembled.clone());
    request.torch_version = Some("2.1.0");
    // --use-cog-base-image
    request.flags.use_cog_base_image = Some(true);
    let choice = choose(&request).unwrap();
    assert_eq!(
        reference(&choice),
        "r8.im/cog-base:cuda12.1-python3.11-torch2.1.0"
    );
    assert_eq!(choice.cog_base_image.as_deref(), Some(reference(&choice)));
    // --use-cog-base-image=false: the CUDA image.
    request.flags.use_cog_base_image = Some(false);
    assert_eq!(
        reference(&choose(&request).unwrap()),
        "nvidia/cuda:12.1.1-cudnn8-devel-ubuntu22.04"
    );
    // --use-cuda-base-image false: the CPU default.
    request.flags = BaseFlags {
        use_cog_base_image: None,
        use_cuda_base_image: Some(UseCudaBaseImage::False),
    };
    let choice = choose(&request).unwrap();
    assert_eq!(choice.base, assembled);
    assert!(
        choice.reason.starts_with("--use-cuda-base-image false"),
        "{}",
        choice.reason
    );
    request.flags.use_cuda_base_image = Some(UseCudaBaseImage::True);
    assert!(reference(&choose(&request).unwrap()).starts_with("nvidia/cuda:12.1.1"));
    // Two set: Cog's error; --base counts as one.
    request.flags.use_cog_base_image = Some(true);
    assert_eq!(
        choose(&request).unwrap_err().to_string(),
        "The flags --use-cog-base-image and --use-cuda-base-image are mutually exclusive: you can only set one of them."
    );
    request.flags = BaseFlags::default();
    request.base_arg = Some(BaseImage::Registry {
        reference: "x/y:z".into(),
    });
    assert_eq!(reference(&choose(&request).unwrap()), "x/y:z");
    request.flags.use_cuda_base_image = Some(UseCudaBaseImage::Auto);
    assert!(matches!(
        choose(&request).unwrap_err(),
        SelectError::MutuallyExclusive(_)
    ));
    // A CPU model without an assembled base: Cog's python:X.Y-slim, patch stripped.
    let cpu = BaseRequest {
        python_version: Some("3.11.4"),
        registry_host: DEFAULT_REGISTRY_HOST,
        ..BaseRequest::default()
    };
    assert_eq!(reference(&choose(&cpu).unwrap()), "python:3.11-slim");
}
