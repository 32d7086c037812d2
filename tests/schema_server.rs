//! End to end (issue 3): the prediction server accepts exactly what the statically generated
//! schema allows.
//!
//! For several predictors of `tests/schema_fixtures/ok/`, the schema is generated with
//! `cog::schema::generate` (no Python runs), written to `<project>/.cog/openapi_schema.json` as
//! `cog build` does, and the real server (`python -m cog.server.http`, from a venv with this
//! repository's `cog` and `coglet` wheels) is started on the project. Valid inputs must succeed;
//! each kind of constraint violation (type, choices, ge/le, min/max length, regex, missing
//! required, explicit null) must get Cog's 422; `GET /openapi.json` must be the generated document.
//!
//! Wheels: `COG_SDK_WHEEL` and `COGLET_WHEEL`, else `dist/` (from `python/build-wheels.sh`),
//! else they are built here with `python/build-wheels.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::copy_dir;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run_ok(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn find_wheel(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
                && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("whl"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The SDK and coglet wheels (see the module docs).
fn wheels() -> (PathBuf, PathBuf) {
    if let (Some(sdk), Some(coglet)) = (
        std::env::var_os("COG_SDK_WHEEL"),
        std::env::var_os("COGLET_WHEEL"),
    ) {
        return (sdk.into(), coglet.into());
    }
    let version = env!("CARGO_PKG_VERSION");
    let (sdk_prefix, coglet_prefix) = (format!("cog-{version}-"), format!("coglet-{version}-"));
    let dist = Path::new(ROOT).join("dist");
    if let (Some(sdk), Some(coglet)) = (
        find_wheel(&dist, &sdk_prefix),
        find_wheel(&dist, &coglet_prefix),
    ) {
        return (sdk, coglet);
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("schema-server-wheels");
    if find_wheel(&out, &sdk_prefix).is_none() || find_wheel(&out, &coglet_prefix).is_none() {
        run_ok(
            Command::new("bash")
                .arg(Path::new(ROOT).join("python/build-wheels.sh"))
                .arg(&out),
        );
    }
    (
        find_wheel(&out, &sdk_prefix).expect("build-wheels.sh wrote the cog wheel"),
        find_wheel(&out, &coglet_prefix).expect("build-wheels.sh wrote the coglet wheel"),
    )
}

/// A venv with both wheels installed (offline, no dependencies), cached per wheel content.
fn python() -> PathBuf {
    let (sdk, coglet) = wheels();
    let mut hash = Sha256::new();
    for wheel in [&sdk, &coglet] {
        hash.update(std::fs::read(wheel).unwrap_or_else(|e| panic!("{}: {e}", wheel.display())));
    }
    let key = hex(&hash.finalize()[..8]);
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = base.join(format!("schema-server-venv-{key}"));
    let python = venv.join("bin/python");
    if python.exists() {
        return python;
    }
    // Built aside, then renamed: a half-made venv is never used.
    let staging = base.join(format!("schema-server-venv-{key}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    run_ok(Command::new("python3").args(["-m", "venv"]).arg(&staging));
    run_ok(
        Command::new(staging.join("bin/pip"))
            .args(["install", "-q", "--no-deps", "--no-index"])
            .arg(&sdk)
            .arg(&coglet),
    );
    // A venv is not relocatable in general, but `python -m` only needs bin/python and
    // pyvenv.cfg, which do not name the directory.
    if std::fs::rename(&staging, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&staging); // another run made it first
    }
    python
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

struct Server {
    child: Child,
    base: String,
    client: reqwest::blocking::Client,
    log: PathBuf,
}

impl Server {
    fn start(python: &Path, project: &Path, predictor_ref: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = project.join("server.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(python);
        cmd.args(["-m", "cog.server.http", "--host", "127.0.0.1"])
            .current_dir(project)
            .env("PORT", port.to_string())
            .env("COG_PREDICT_TYPE_STUB", predictor_ref)
            .env("LOG_FORMAT", "console")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("COG_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("COG_PREDICT_TYPE_STUB", predictor_ref);
        let child = cmd.spawn().unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            log,
        };
        server.wait_ready();
        server
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Ok(r) = self
                .client
                .get(format!("{}/health-check", self.base))
                .send()
            {
                last = r.json().unwrap_or(Value::Null);
                if last["status"] == "READY" {
                    return;
                }
                assert_ne!(last["status"], "SETUP_FAILED", "{last}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server never READY: {last}\n{}", self.logs());
    }

    fn predict(&self, input: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/predictions", self.base))
            .json(&json!({ "input": input }))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap())
    }

    fn get_text(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One predictor and the inputs fed to it.
struct Case {
    fixture: &'static str,
    valid: Vec<Value>,
    /// Each invalid input and the input fields its 422 must name (in `loc`).
    invalid: Vec<(Value, Vec<&'static str>)>,
}

const DATA_URL: &str = "data:text/plain;base64,aGk=";

fn cases() -> Vec<Case> {
    vec![
        Case {
            fixture: "primitives",
            valid: vec![
                json!({"text": "a"}),
                json!({"text": "", "count": 1, "temperature": 0, "verbose": true}),
                json!({"text": "b", "count": 100, "temperature": -3.5}),
                // Unknown inputs are stripped, not rejected.
                json!({"text": "c", "unknown": [1, 2]}),
            ],
            invalid: vec![
                (json!({}), vec!["text"]),
                (json!({"count": 2}), vec!["text"]),
                (json!({"text": 1}), vec!["text"]),
                (json!({"text": "a", "count": 0}), vec!["count"]),
                (json!({"text": "a", "count": 101}), vec!["count"]),
                (json!({"text": "a", "count": 2.5}), vec!["count"]),
                (json!({"text": "a", "count": "5"}), vec!["count"]),
                (
                    json!({"text": "a", "temperature": "hot"}),
                    vec!["temperature"],
                ),
                (json!({"text": "a", "verbose": "yes"}), vec!["verbose"]),
                (json!({"text": null}), vec!["text"]),
            ],
        },
        Case {
            fixture: "input_keywords",
            valid: vec![
                json!({}),
                json!({"prompt": "a dog", "guidance": 0, "seed": 4_294_967_295_u64}),
                json!({"prompt": "x", "guidance": 20.5, "seed": -1, "old": "y"}),
                json!({"prompt": "a".repeat(500)}),
            ],
            invalid: vec![
                // Both too short and not matching the regex: two entries for one field.
                (json!({"prompt": ""}), vec!["prompt"]),
                (json!({"prompt": "a".repeat(501)}), vec!["prompt"]),
                (json!({"prompt": "Not Lowercase"}), vec!["prompt"]),
                (json!({"guidance": 20.6}), vec!["guidance"]),
                (json!({"guidance": -0.1}), vec!["guidance"]),
                (json!({"seed": -2}), vec!["seed"]),
                (json!({"seed": 4_294_967_296_u64}), vec!["seed"]),
                (json!({"seed": "1"}), vec!["seed"]),
            ],
        },
        Case {
            fixture: "choices_int",
            valid: vec![json!({"height": 256}), json!({"height": 512, "width": 768})],
            invalid: vec![
                (json!({}), vec!["height"]),
                (json!({"height": 300}), vec!["height"]),
                (json!({"height": 256, "width": 1024}), vec!["width"]),
                (json!({"height": "256"}), vec!["height"]),
            ],
        },
        Case {
            fixture: "literal_enums",
            valid: vec![
                json!({}),
                json!({"mode": "slow", "steps": 4, "style": "b"}),
                // A nullable input accepts an explicit null (Cog <= 0.16's pydantic did).
                json!({"style": null}),
            ],
            invalid: vec![
                (json!({"mode": "medium"}), vec!["mode"]),
                (json!({"steps": 3}), vec!["steps"]),
                (json!({"style": "c"}), vec!["style"]),
                (json!({"mode": null}), vec!["mode"]),
            ],
        },
        Case {
            fixture: "optional_forms",
            valid: vec![
                json!({}),
                json!({"a": "x", "b": "y", "c": 3, "d": ["p", "q"], "e": 2}),
                json!({"a": null, "b": null, "c": null, "d": null, "e": null}),
            ],
            invalid: vec![
                (json!({"c": "three"}), vec!["c"]),
                (json!({"d": [1]}), vec!["d"]),
                (json!({"d": "p"}), vec!["d"]),
            ],
        },
        Case {
            fixture: "seed_none_idiom",
            // `seed: int = Input(default=None)`: optional, nullable (issue 17).
            valid: vec![
                json!({}),
                json!({"seed": null}),
                json!({"seed": 3, "prompt": "p"}),
            ],
            invalid: vec![(json!({"seed": "3"}), vec!["seed"])],
        },
        Case {
            fixture: "list_inputs",
            valid: vec![
                json!({"words": [], "images": [DATA_URL], "flags": [true]}),
                json!({"words": ["a"], "numbers": [], "images": [DATA_URL, DATA_URL], "flags": []}),
                // `flags: list[bool] = None` is optional (default=None), as Cog <= 0.16 had it.
                json!({"words": [], "images": [DATA_URL]}),
            ],
            invalid: vec![
                (json!({"images": [DATA_URL], "flags": []}), vec!["words"]),
                (json!({}), vec!["words", "images"]),
                (
                    json!({"words": ["a"], "numbers": ["1"], "images": [], "flags": []}),
                    vec!["numbers"],
                ),
                (
                    json!({"words": "a", "images": [DATA_URL], "flags": []}),
                    vec!["words"],
                ),
                (
                    json!({"words": [], "images": [DATA_URL], "flags": [1]}),
                    vec!["flags"],
                ),
            ],
        },
        Case {
            fixture: "secret_inputs",
            valid: vec![
                json!({"token": "t"}),
                json!({"token": "t", "api_key": "k", "other": "o"}),
            ],
            invalid: vec![
                (json!({"api_key": "k"}), vec!["token"]),
                (json!({"token": 5}), vec!["token"]),
            ],
        },
    ]
}

fn predictor_ref(project: &Path) -> String {
    let yaml = std::fs::read_to_string(project.join("cog.yaml")).unwrap();
    let Some(reference) = yaml.lines().find_map(|l| l.strip_prefix("predict:")) else {
        panic!("no predict: in {}/cog.yaml", project.display());
    };
    reference.trim().trim_matches('"').to_string()
}

#[test]
fn server_accepts_exactly_what_the_generated_schema_allows() {
    let python = python();
    let mut rejections = serde_json::Map::new();
    for case in cases() {
        let src = Path::new(ROOT)
            .join("tests/schema_fixtures/ok")
            .join(case.fixture);
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join(case.fixture);
        copy_dir(&src, &project);
        let reference = predictor_ref(&project);
        let generated = cog::schema::generate(&project, Some(&reference), None)
            .unwrap_or_else(|e| panic!("{}: {e}", case.fixture));
        std::fs::create_dir_all(project.join(".cog")).unwrap();
        std::fs::write(
            project.join(".cog/openapi_schema.json"),
            &generated.document,
        )
        .unwrap();

        let server = Server::start(&python, &project, &reference);
        let ctx = |what: &str| format!("{}: {what}\n{}", case.fixture, server.logs());

        let (status, served) = server.get_text("/openapi.json");
        assert_eq!(status, 200, "{}", ctx("GET /openapi.json"));
        let served: Value = serde_json::from_str(&served).unwrap();
        let document: Value = serde_json::from_str(&generated.document).unwrap();
        // Same content and the same key order.
        assert_eq!(
            serde_json::to_string(&served).unwrap(),
            serde_json::to_string(&document).unwrap(),
            "{}",
            ctx("/openapi.json differs from the generated document")
        );

        for input in &case.valid {
            let (status, body) = server.predict(input);
            assert_eq!(
                (status, &body["status"]),
                (200, &json!("succeeded")),
                "{}",
                ctx(&format!("valid input {input} was refused: {body}"))
            );
        }

        let mut fixture_rejections = Vec::new();
        for (input, fields) in &case.invalid {
            let (status, body) = server.predict(input);
            assert_eq!(
                status,
                422,
                "{}",
                ctx(&format!("invalid input {input} got {body}"))
            );
            let detail = body["detail"]
                .as_array()
                .unwrap_or_else(|| panic!("{}", ctx(&format!("no detail in {body}"))));
            let mut named: Vec<&str> = detail
                .iter()
                .map(|d| {
                    let loc = d["loc"].as_array().unwrap();
                    assert_eq!(loc[..2], [json!("body"), json!("input")], "{body}");
                    assert!(d["msg"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
                    let kind = d["type"].as_str().unwrap();
                    if d["msg"] == "Field required" {
                        assert_eq!(kind, "value_error.missing", "{body}");
                    } else {
                        assert_eq!(kind, "value_error", "{body}");
                    }
                    // Cog names the instance path without its leading '/': `d/0` for an
                    // array item. The top-level field is its first segment.
                    loc[2].as_str().unwrap().split('/').next().unwrap()
                })
                .collect();
            // A field can have several errors (one per violated keyword); the snapshot below
            // pins them all. Here: exactly the expected fields, in order.
            let mut seen = std::collections::HashSet::new();
            named.retain(|f| seen.insert(*f));
            assert_eq!(&named, fields, "{}", ctx(&format!("{input}: {body}")));
            fixture_rejections.push(json!({"input": input, "response": body}));
        }
        rejections.insert(case.fixture.to_string(), Value::Array(fixture_rejections));

        // The server is still fine after all of that.
        let (status, _) = server.predict(&case.valid[0]);
        assert_eq!(status, 200, "{}", ctx("after the invalid inputs"));
    }
    // Cog's 422 bodies, message texts included.
    insta::assert_json_snapshot!("rejections", shorten(Value::Object(rejections)));
}

/// Long strings (the 501-character prompt) shortened for the snapshot.
fn shorten(v: Value) -> Value {
    match v {
        Value::String(s) if s.chars().count() > 80 => {
            let head: String = s.chars().take(40).collect();
            Value::String(format!("{head}...({} chars)", s.chars().count()))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(shorten).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, shorten(v))).collect())
        }
        other => other,
    }
}

/// `seed: int = Input(default=None)` omitted, null and set: the predictor receives `None`,
/// `None` and the value (issue 17).
#[test]
fn none_default_inputs_reach_the_predictor_as_none() {
    let python = python();
    let src = Path::new(ROOT).join("tests/schema_fixtures/ok/seed_none_idiom");
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("seed_none_idiom");
    copy_dir(&src, &project);
    let reference = predictor_ref(&project);
    let generated = cog::schema::generate(&project, Some(&reference), None).unwrap();
    std::fs::create_dir_all(project.join(".cog")).unwrap();
    std::fs::write(
        project.join(".cog/openapi_schema.json"),
        &generated.document,
    )
    .unwrap();
    let server = Server::start(&python, &project, &reference);
    for (input, output) in [
        (json!({}), "None None"),
        (json!({"seed": null}), "None None"),
        (json!({"seed": 42, "prompt": "p"}), "42 'p'"),
    ] {
        let (status, body) = server.predict(&input);
        assert_eq!(status, 200, "{input}: {body}\n{}", server.logs());
        assert_eq!(body["output"], output, "{input}: {body}");
    }
}
