//! Schema generation for a large generated predictor: a 2,000-line module with 30 inputs,
//! helper classes, constants and a BaseModel output. Goal: under 20 ms. And a predictor whose
//! choices and defaults are computed, for the static evaluator's cost.
//! Run: `cargo bench -p cog --bench schema`.

use std::fmt::Write as _;
use std::hint::black_box;

use cog::schema::{self, Mode};
use criterion::{Criterion, criterion_group, criterion_main};

/// A predictor module of about `lines` lines with `inputs` parameters of mixed kinds.
fn generated_predictor(lines: usize, inputs: usize) -> String {
    let mut src = String::from(
        "from typing import Iterator, List, Literal, Optional\n\
         from cog import BaseModel, BasePredictor, Input, Path, Secret\n\n",
    );
    for i in 0..40 {
        let _ = writeln!(src, "CONST_{i} = {i}\nNAME_{i} = \"value {i}\"");
    }
    src.push_str("CHOICES = [\"a\", \"b\", \"c\"]\n\n");
    src.push_str(
        "class Output(BaseModel):\n    text: str\n    score: float\n    tags: List[str]\n    image: Optional[Path]\n\n",
    );
    // Filler: helper classes and functions with bodies, as real predictors have.
    let mut helper = 0;
    while src.lines().count() < lines {
        let _ = write!(
            src,
            "class Helper{helper}:\n    \"\"\"Helper {helper}.\"\"\"\n\n    def __init__(self, size: int = {helper}) -> None:\n        self.size = size\n        self.items = [i * 2 for i in range(size)]\n\n    def compute(self, x: float, y: float = 1.5) -> float:\n        total = 0.0\n        for item in self.items:\n            if item % 3 == 0:\n                total += x * item\n            else:\n                total -= y / (item + 1)\n        return total\n\n\ndef helper_fn_{helper}(values: list[int]) -> dict:\n    return {{\"sum\": sum(values), \"n\": len(values), \"name\": NAME_{}}}\n\n\n",
            helper % 40
        );
        helper += 1;
    }
    src.push_str("class Predictor(BasePredictor):\n    def setup(self) -> None:\n        self.model = None\n\n    def predict(\n        self,\n");
    for i in 0..inputs {
        let param = match i % 6 {
            0 => format!(
                "        prompt_{i}: str = Input(description=\"Prompt {i}\", default=NAME_{}),\n",
                i % 40
            ),
            1 => format!(
                "        steps_{i}: int = Input(description=\"Steps\", ge=1, le=500, default=CONST_{}),\n",
                (i % 39) + 1
            ),
            2 => format!("        scale_{i}: float = Input(ge=0.0, le=20.0, default=7.5),\n"),
            3 => format!("        mode_{i}: str = Input(choices=CHOICES, default=\"a\"),\n"),
            4 => format!(
                "        image_{i}: Optional[Path] = Input(description=\"Image\", default=None),\n"
            ),
            _ => format!("        style_{i}: Literal[\"x\", \"y\"] = \"x\",\n"),
        };
        src.push_str(&param);
    }
    src.push_str(
        "    ) -> Output:\n        return Output(text=\"\", score=0.0, tags=[], image=None)\n",
    );
    src
}

fn bench(c: &mut Criterion) {
    let src = generated_predictor(2000, 30);
    assert!(
        src.lines().count() >= 2000,
        "generated {} lines",
        src.lines().count()
    );
    let model =
        schema::parse_model_source(&src, "Predictor", Mode::Predict).expect("valid predictor");
    assert_eq!(model.inputs.len(), 30);
    c.bench_function("schema_2000_lines_30_inputs", |b| {
        b.iter(|| {
            let model = schema::parse_model_source(black_box(&src), "Predictor", Mode::Predict)
                .expect("parse");
            black_box(schema::document(&model).to_compact())
        });
    });
}

/// A predictor whose choices and defaults are computed (dict keys, `sorted`, comprehensions,
/// enum values, a helper function, f-strings): the static evaluator's cost on top of parsing.
fn computed_predictor(inputs: usize) -> String {
    let mut src = String::from(
        "from enum import Enum\nfrom cog import BasePredictor, Input, Path\n\n\
         class Style(str, Enum):\n    PHOTO = \"photo\"\n    ANIME = \"anime\"\n\n",
    );
    for i in 0..20 {
        let _ = writeln!(src, "class Scheduler{i}:\n    pass\n");
    }
    src.push_str("SCHEDULERS = {\n");
    for i in 0..20 {
        let _ = writeln!(src, "    \"scheduler_{i}\": Scheduler{i},");
    }
    src.push_str("}\nLANGUAGES = {f\"lang_{i}\": i for i in range(100)}\nSIZES = [256 * k for k in range(1, 9)]\n\n\
         def default_size():\n    return SIZES[len(SIZES) // 2]\n\n\
         class Predictor(BasePredictor):\n    def predict(\n        self,\n");
    for i in 0..inputs {
        let param = match i % 4 {
            0 => format!(
                "        scheduler_{i}: str = Input(choices=list(SCHEDULERS.keys()), default=list(SCHEDULERS)[0]),\n"
            ),
            1 => format!(
                "        language_{i}: str = Input(choices=sorted(LANGUAGES), default=None),\n"
            ),
            2 => format!(
                "        size_{i}: int = Input(choices=SIZES, default=default_size(), description=f\"Size, up to {{max(SIZES)}}\"),\n"
            ),
            _ => format!(
                "        style_{i}: str = Input(choices=[s.value for s in Style], default=Style.PHOTO.value),\n"
            ),
        };
        src.push_str(&param);
    }
    src.push_str("    ) -> Path:\n        return Path(\"out.png\")\n");
    src
}

fn bench_computed(c: &mut Criterion) {
    let src = computed_predictor(30);
    let model =
        schema::parse_model_source(&src, "Predictor", Mode::Predict).expect("valid predictor");
    assert_eq!(model.inputs.len(), 30);
    c.bench_function("schema_computed_choices_30_inputs", |b| {
        b.iter(|| {
            let model = schema::parse_model_source(black_box(&src), "Predictor", Mode::Predict)
                .expect("parse");
            black_box(schema::document(&model).to_compact())
        });
    });
}

criterion_group!(benches, bench, bench_computed);
criterion_main!(benches);
