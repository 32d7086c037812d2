use super::*;
use crate::plan::{BaseImage, LayerContent, Phase, PlanError, PlanInputs};

fn hello_project() -> PlanInputs {
    PlanInputs {
        config_file_name: "cog.yaml".into(),
        config_file_contents: "build:\n  python_version: \"3.11\"\nrun: predict.py:Predictor\n"
            .into(),
        python_version: Some("3.11".into()),
        predict_ref: Some("predict.py:Predictor".into()),
        environment: vec![("HF_HOME".into(), "/src/.hf".into())],
        config_label: r#"{"build":{"python_version":"3.11"},"predict":"predict.py:Predictor"}"#
            .into(),
        dockerignore: vec!["*.ckpt".into()],
        platform: "linux/amd64".into(),
        cog_version: "0.1.0".into(),
        ..PlanInputs::default()
    }
}

#[test]
fn hello_plan_snapshot() {
    let plan = PythonStack.plan(&hello_project()).unwrap();
    insta::assert_snapshot!(plan.to_json());
}

#[test]
fn same_inputs_give_the_same_plan() {
    let a = PythonStack.plan(&hello_project()).unwrap().to_json();
    let b = PythonStack.plan(&hello_project()).unwrap().to_json();
    assert_eq!(a, b);
}

#[test]
fn default_base_is_python_slim_without_patch_version() {
    let mut project = hello_project();
    project.python_version = Some("3.11.7".into());
    let plan = PythonStack.plan(&project).unwrap();
    assert_eq!(
        plan.base,
        BaseImage::Registry {
            reference: "python:3.11-slim".into()
        }
    );
}

#[test]
fn base_override_wins() {
    let mut project = hello_project();
    project.base_override = Some(BaseImage::parse("oci:/tmp/base:v1").unwrap());
    let plan = PythonStack.plan(&project).unwrap();
    assert_eq!(plan.base.to_string(), "oci:/tmp/base:v1");
}

#[test]
fn no_python_version_and_no_base_is_an_error() {
    let mut project = hello_project();
    project.python_version = None;
    let err = PythonStack.plan(&project).unwrap_err();
    assert!(
        matches!(err, PlanError::Block { block: "base", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("python_version"));
}

#[test]
fn source_layer_excludes_dot_cog_and_dockerignore() {
    let plan = PythonStack.plan(&hello_project()).unwrap();
    let source = plan.layers.iter().find(|l| l.id == "source").unwrap();
    assert_eq!(source.phase, Phase::AppSource);
    let LayerContent::Tree { excludes, dest, .. } = &source.content else {
        panic!("tree")
    };
    assert_eq!(dest, "/src");
    assert_eq!(excludes, &["*.ckpt".to_string(), ".cog".to_string()]);
}

#[test]
fn custom_config_file_is_copied_to_cog_yaml() {
    let mut project = hello_project();
    project.config_file_name = "cog.gpu.yaml".into();
    let plan = PythonStack.plan(&project).unwrap();
    let layer = plan.layers.iter().find(|l| l.id == "config-file").unwrap();
    assert_eq!(layer.created_by, "RUN cp /src/cog.gpu.yaml /src/cog.yaml");
}

#[test]
fn schema_adds_a_file_layer_and_a_label() {
    let mut project = hello_project();
    project.openapi_schema = Some((
        "{\n  \"openapi\": \"3.0.2\"\n}".into(),
        r#"{"openapi":"3.0.2"}"#.into(),
    ));
    let plan = PythonStack.plan(&project).unwrap();
    let ids: Vec<_> = plan.layers.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["openapi-schema", "source"]);
    assert_eq!(
        plan.image.labels["run.cog.openapi_schema"],
        r#"{"openapi":"3.0.2"}"#
    );
}

#[test]
fn a_schema_for_the_runtime_path_is_a_step_after_the_source_and_no_label_yet() {
    let mut project = hello_project();
    project.runtime_schema = Some(vec!["predict.py:9: choices for parameter 'x' ...".into()]);
    let plan = PythonStack.plan(&project).unwrap();
    let ids: Vec<_> = plan.layers.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["source", "openapi-schema"]);
    assert_eq!(
        plan.layers[1].content,
        LayerContent::RuntimeSchema {
            predict_ref: Some("predict.py:Predictor".into()),
            train_ref: None,
            reasons: vec!["predict.py:9: choices for parameter 'x' ...".into()],
        }
    );
    // The builder sets it once the schema is complete.
    assert!(!plan.image.labels.contains_key("run.cog.openapi_schema"));
}

#[test]
fn runner_refs_and_concurrency_become_env() {
    let mut project = hello_project();
    project.train_ref = Some("train.py:train".into());
    project.concurrency_max = Some(4);
    let plan = PythonStack.plan(&project).unwrap();
    let env: std::collections::BTreeMap<_, _> = plan.image.env.iter().cloned().collect();
    assert_eq!(env["COG_PREDICT_TYPE_STUB"], "predict.py:Predictor");
    assert_eq!(env["COG_TRAIN_TYPE_STUB"], "train.py:train");
    assert_eq!(env["COG_MAX_CONCURRENCY"], "4");
}

#[test]
fn large_files_get_layers_below_the_source_which_leaves_them_out() {
    use crate::plan::{FoundFile, LargeFiles};
    let mut project = hello_project();
    let found = |path: &str, size: u64, compressible: bool| FoundFile {
        path: path.into(),
        size,
        compressible,
    };
    project.large_files = LargeFiles {
        threshold: 10 << 20,
        alone: vec![
            found("weights/a.safetensors", 20 << 20, false),
            found("data.json", 30 << 20, true),
        ],
        grouped: vec![
            found("lora.bin", 2 << 20, false),
            found("adapter.pt", 3 << 20, false),
        ],
    };
    let plan = PythonStack.plan(&project).unwrap();
    let ids: Vec<(&str, Phase)> = plan
        .layers
        .iter()
        .map(|l| (l.id.as_str(), l.phase))
        .filter(|(_, phase)| *phase >= Phase::Weights)
        .collect();
    assert_eq!(
        ids,
        [
            ("weights:weights/a.safetensors", Phase::Weights),
            ("weights:data.json", Phase::Weights),
            ("weights-grouped", Phase::Weights),
            ("openapi-schema", Phase::AppSource),
            ("source", Phase::AppSource),
        ]
        .into_iter()
        .filter(|(id, _)| plan.layers.iter().any(|l| l.id == *id))
        .collect::<Vec<_>>()
    );
    let compress = |id: &str| match &plan.layers.iter().find(|l| l.id == id).unwrap().content {
        LayerContent::ProjectFiles { compress, files } => (*compress, files.len()),
        other => panic!("{other:?}"),
    };
    assert_eq!(compress("weights:weights/a.safetensors"), (false, 1));
    assert_eq!(compress("weights:data.json"), (true, 1));
    assert_eq!(compress("weights-grouped"), (false, 2));
    let source = plan.layers.iter().find(|l| l.id == "source").unwrap();
    let LayerContent::Tree { excludes, .. } = &source.content else {
        panic!("{source:?}");
    };
    assert_eq!(
        excludes,
        &[
            "*.ckpt",
            ".cog",
            "weights/a.safetensors",
            "data.json",
            "lora.bin",
            "adapter.pt"
        ]
    );
}

#[test]
fn without_large_files_the_plan_has_no_weights_phase() {
    let plan = PythonStack.plan(&hello_project()).unwrap();
    assert!(plan.layers.iter().all(|l| l.phase != Phase::Weights));
}
