//! The OpenAPI 3.0.2 document, shaped and ordered as Cog's `buildOpenAPISpec` writes it.

use super::json::Json;
use super::model::{InputField, Mode, ModelSchema, title_case};

/// The Cog version the document advertises in `info.version` (Cog writes its CLI version).
pub const COG_VERSION: &str = "0.22.0";

/// One input property, and the enum component its choices need.
pub(crate) fn input_property(field: &InputField) -> (Json, Option<(String, Json)>) {
    let mut prop: Vec<(String, Json)> = vec![("x-order".into(), Json::Int(field.order as i64))];
    let mut enum_component = None;
    if field.choices.is_empty() {
        prop.push(("title".into(), Json::Str(title_case(&field.name))));
        prop.extend(field.input_type.json_schema());
    } else {
        enum_component = Some((field.name.clone(), choices_component(field)));
        prop.push((
            "allOf".into(),
            Json::Array(vec![Json::map([(
                "$ref",
                Json::Str(format!("#/components/schemas/{}", field.name)),
            )])]),
        ));
    }
    if let Some(default) = field.effective_default() {
        prop.push(("default".into(), default.to_json()));
    }
    if field.is_nullable() {
        prop.push(("nullable".into(), Json::Bool(true)));
    }
    prop.extend(annotations(field));
    (Json::map(prop), enum_component)
}

/// The `<param>` component an input with choices refers to.
fn choices_component(field: &InputField) -> Json {
    let (flat, _) = field.input_type.flat();
    Json::map([
        ("title", Json::Str(field.name.clone())),
        ("description", Json::str("An enumeration.")),
        (
            "enum",
            Json::Array(
                field
                    .choices
                    .iter()
                    .map(super::model::Value::to_json)
                    .collect(),
            ),
        ),
        ("type", Json::str(flat.json_type())),
    ])
}

/// Description, constraints and the other `Input()` keywords, as schema keys.
fn annotations(field: &InputField) -> Vec<(String, Json)> {
    let mut out: Vec<(String, Json)> = Vec::new();
    let mut push = |key: &str, value: Json| out.push((key.to_owned(), value));
    if let Some(d) = &field.description {
        push("description", Json::Str(d.clone()));
    }
    if let Some(ge) = field.ge {
        push("minimum", Json::Float(ge));
    }
    if let Some(le) = field.le {
        push("maximum", Json::Float(le));
    }
    if let Some(n) = field.min_length {
        push("minLength", Json::Int(n as i64));
    }
    if let Some(n) = field.max_length {
        push("maxLength", Json::Int(n as i64));
    }
    if let Some(r) = &field.regex {
        push("pattern", Json::Str(r.clone()));
    }
    if field.deprecated {
        push("deprecated", Json::Bool(true));
    }
    if let Some(a) = &field.accept {
        push("x-cog-accept", Json::Str(a.clone()));
    }
    out
}

/// The `Input` (or `TrainingInput`) schema and its enum components.
pub fn input_schema(model: &ModelSchema, title: &str) -> (Json, Vec<(String, Json)>) {
    let mut properties = Vec::new();
    let mut enums = Vec::new();
    for field in &model.inputs {
        let (prop, component) = input_property(field);
        properties.push((field.name.clone(), prop));
        enums.extend(component);
    }
    let required: Vec<Json> = model
        .inputs
        .iter()
        .filter(|f| f.is_required())
        .map(|f| Json::Str(f.name.clone()))
        .collect();
    let mut entries = vec![
        ("title", Json::str(title)),
        ("type", Json::str("object")),
        ("properties", Json::ordered(properties)),
    ];
    if !required.is_empty() {
        entries.push(("required", Json::Array(required)));
    }
    (Json::map(entries), enums)
}

fn json_response(schema: Json) -> Json {
    Json::map([("application/json", Json::map([("schema", schema)]))])
}

fn reference(name: &str) -> Json {
    Json::map([("$ref", Json::Str(format!("#/components/schemas/{name}")))])
}

fn empty_ok() -> Json {
    Json::map([
        ("description", Json::str("Successful Response")),
        ("content", json_response(Json::map::<&str>([]))),
    ])
}

fn validation_error_response() -> Json {
    Json::map([
        ("description", Json::str("Validation Error")),
        ("content", json_response(reference("HTTPValidationError"))),
    ])
}

fn string_prop(title: &str) -> Json {
    Json::map([("title", Json::str(title)), ("type", Json::str("string"))])
}

fn date_prop(title: &str) -> Json {
    Json::map([
        ("title", Json::str(title)),
        ("type", Json::str("string")),
        ("format", Json::str("date-time")),
    ])
}

/// The names that differ between the predict and train documents.
struct Names {
    endpoint: &'static str,
    request: &'static str,
    response: &'static str,
    cancel: &'static str,
    summary: &'static str,
    description: &'static str,
    operation_id: &'static str,
    cancel_operation_id: &'static str,
    cancel_param: &'static str,
    input: &'static str,
    output: &'static str,
}

const PREDICT: Names = Names {
    endpoint: "/predictions",
    request: "PredictionRequest",
    response: "PredictionResponse",
    cancel: "/predictions/{prediction_id}/cancel",
    summary: "Predict",
    description: "Run a single prediction on the model",
    operation_id: "predict_predictions_post",
    cancel_operation_id: "cancel_predictions__prediction_id__cancel_post",
    cancel_param: "prediction_id",
    input: "Input",
    output: "Output",
};

const TRAIN: Names = Names {
    endpoint: "/trainings",
    request: "TrainingRequest",
    response: "TrainingResponse",
    cancel: "/trainings/{training_id}/cancel",
    summary: "Train",
    description: "Run a single training on the model",
    operation_id: "train_trainings_post",
    cancel_operation_id: "cancel_trainings__training_id__cancel_post",
    cancel_param: "training_id",
    input: "TrainingInput",
    output: "TrainingOutput",
};

/// The whole document for one mode, as a JSON tree (keys in Cog's order).
pub fn document(model: &ModelSchema) -> Json {
    let names = if model.mode == Mode::Train {
        &TRAIN
    } else {
        &PREDICT
    };
    Json::map([
        ("openapi", Json::str("3.0.2")),
        (
            "info",
            Json::map([
                ("title", Json::str("Cog")),
                ("version", Json::str(COG_VERSION)),
            ]),
        ),
        ("paths", paths(model, names)),
        (
            "components",
            Json::map([("schemas", Json::ordered(components(model, names)))]),
        ),
    ])
}

/// `components.schemas`: input, output, enums, then the fixed request/response schemas.
fn components(model: &ModelSchema, names: &Names) -> Vec<(String, Json)> {
    let (input, enums) = input_schema(model, names.input);
    let mut components: Vec<(String, Json)> = vec![
        (names.input.into(), input),
        (names.output.into(), model.output.json_schema(true)),
    ];
    components.extend(enums);
    components.push((names.request.into(), request_schema(names)));
    components.push((names.response.into(), response_schema(names)));
    components.push(("Status".into(), status_schema()));
    components.push(("HTTPValidationError".into(), http_validation_error_schema()));
    components.push(("ValidationError".into(), validation_error_schema()));
    components
}

fn request_schema(names: &Names) -> Json {
    Json::map([
        ("title", Json::str(names.request)),
        ("type", Json::str("object")),
        (
            "properties",
            Json::map([("id", string_prop("Id")), ("input", reference(names.input))]),
        ),
    ])
}

fn response_schema(names: &Names) -> Json {
    Json::map([
        ("title", Json::str(names.response)),
        ("type", Json::str("object")),
        (
            "properties",
            Json::map([
                ("input", reference(names.input)),
                ("output", reference(names.output)),
                ("id", string_prop("Id")),
                ("version", string_prop("Version")),
                ("created_at", date_prop("Created At")),
                ("started_at", date_prop("Started At")),
                ("completed_at", date_prop("Completed At")),
                ("status", string_prop("Status")),
                ("error", string_prop("Error")),
                ("logs", string_prop("Logs")),
                (
                    "metrics",
                    Json::map([
                        ("title", Json::str("Metrics")),
                        ("type", Json::str("object")),
                    ]),
                ),
            ]),
        ),
    ])
}

fn status_schema() -> Json {
    Json::map([
        ("title", Json::str("Status")),
        ("description", Json::str("An enumeration.")),
        (
            "enum",
            Json::Array(
                ["starting", "processing", "succeeded", "canceled", "failed"]
                    .into_iter()
                    .map(Json::str)
                    .collect(),
            ),
        ),
        ("type", Json::str("string")),
    ])
}

fn http_validation_error_schema() -> Json {
    Json::map([
        ("title", Json::str("HTTPValidationError")),
        ("type", Json::str("object")),
        (
            "properties",
            Json::map([(
                "detail",
                Json::map([
                    ("title", Json::str("Detail")),
                    ("type", Json::str("array")),
                    ("items", reference("ValidationError")),
                ]),
            )]),
        ),
    ])
}

fn validation_error_schema() -> Json {
    let location_item = Json::map([(
        "anyOf",
        Json::Array(vec![
            Json::map([("type", Json::str("string"))]),
            Json::map([("type", Json::str("integer"))]),
        ]),
    )]);
    Json::map([
        ("title", Json::str("ValidationError")),
        (
            "required",
            Json::Array(vec![Json::str("loc"), Json::str("msg"), Json::str("type")]),
        ),
        ("type", Json::str("object")),
        (
            "properties",
            Json::map([
                (
                    "loc",
                    Json::map([
                        ("title", Json::str("Location")),
                        ("type", Json::str("array")),
                        ("items", location_item),
                    ]),
                ),
                ("msg", string_prop("Message")),
                ("type", string_prop("Error Type")),
            ]),
        ),
    ])
}

/// `paths`: root, health check, the run endpoint and its cancel endpoint.
fn paths(model: &ModelSchema, names: &Names) -> Json {
    let get = |summary: &str, op: &str| {
        Json::map([(
            "get",
            Json::map([
                ("summary", Json::str(summary)),
                ("operationId", Json::str(op)),
                ("responses", Json::map([("200", empty_ok())])),
            ]),
        )])
    };
    Json::ordered([
        ("/".to_owned(), get("Root", "root__get")),
        (
            "/health-check".to_owned(),
            get("Healthcheck", "healthcheck_health_check_get"),
        ),
        (
            names.endpoint.to_owned(),
            Json::map([("post", run_operation(model, names))]),
        ),
        (names.cancel.to_owned(), cancel_path(names)),
    ])
}

/// `POST /predictions` (or `/trainings`).
fn run_operation(model: &ModelSchema, names: &Names) -> Json {
    let mut operation = vec![
        ("summary", Json::str(names.summary)),
        ("description", Json::str(names.description)),
        ("operationId", Json::str(names.operation_id)),
        (
            "requestBody",
            Json::map([("content", json_response(reference(names.request)))]),
        ),
        (
            "responses",
            Json::map([
                (
                    "200",
                    Json::map([
                        ("description", Json::str("Successful Response")),
                        ("content", json_response(reference(names.response))),
                    ]),
                ),
                ("422", validation_error_response()),
            ]),
        ),
    ];
    if model.mode == Mode::Predict && model.streaming {
        operation.push(("x-cog-streaming", Json::Bool(true)));
    }
    Json::map(operation)
}

fn cancel_path(names: &Names) -> Json {
    Json::map([(
        "post",
        Json::map([
            ("summary", Json::str("Cancel")),
            ("operationId", Json::str(names.cancel_operation_id)),
            (
                "parameters",
                Json::Array(vec![Json::map([
                    ("required", Json::Bool(true)),
                    ("schema", string_prop(&title_case(names.cancel_param))),
                    ("name", Json::str(names.cancel_param)),
                    ("in", Json::str("path")),
                ])]),
            ),
            (
                "responses",
                Json::map([("200", empty_ok()), ("422", validation_error_response())]),
            ),
        ]),
    )])
}

/// Cog's `MergeSchemas`: the predict document, plus train paths and components it lacks,
/// after a round trip through Go's `map[string]any` (everything sorted, numbers float64).
pub fn merge(predict: &Json, train: &Json) -> Json {
    let mut merged = predict.normalized_like_go_any();
    let train = train.normalized_like_go_any();
    for section in [&["paths"][..], &["components", "schemas"][..]] {
        let Some(Json::Object(extra)) = lookup(&train, section) else {
            continue;
        };
        if let Some(Json::Object(target)) = lookup_mut(&mut merged, section) {
            for (k, v) in extra {
                if !target.iter().any(|(tk, _)| tk == k) {
                    target.push((k.clone(), v.clone()));
                }
            }
            target.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }
    merged
}

fn lookup<'a>(json: &'a Json, path: &[&str]) -> Option<&'a Json> {
    path.iter().try_fold(json, |j, key| j.get(key))
}

fn lookup_mut<'a>(json: &'a mut Json, path: &[&str]) -> Option<&'a mut Json> {
    let mut current = json;
    for key in path {
        let Json::Object(entries) = current else {
            return None;
        };
        current = entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)?;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::title_case;

    #[test]
    fn title_case_matches_cog() {
        assert_eq!(title_case("max_tokens"), "Max Tokens");
        assert_eq!(title_case("x"), "X");
        assert_eq!(title_case("_private"), " Private");
        assert_eq!(title_case("a__b"), "A  B");
        assert_eq!(title_case("prediction_id"), "Prediction Id");
        assert_eq!(title_case("\u{e9}t\u{e9}"), "\u{fffd}\u{fffd}t\u{e9}");
    }
}
