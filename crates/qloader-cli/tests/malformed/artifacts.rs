//! The small artifact files: a sensitivity table (JSON), a plan (JSON) and
//! a device profile (TOML), each valid as written here, then broken one way.

use serde_json::{json, Value};

use super::{Case, Content, Open};

/// A valid two-tensor sensitivity table (schema `qloader-sensitivity` v2).
pub fn table() -> Value {
    let entry = |bytes: u64, mse: f64| {
        json!({ "bytes": bytes, "weight_mse": mse, "proxy": mse * 10.0, "e2e": mse * 3.0,
                "e2e_estimate": mse * 3.0 })
    };
    let tensor = |name: &str, kind: &str| {
        json!({ "name": name, "shape": [8, 8], "kind": kind, "layer": 0,
                "formats": { "int8": entry(96, 0.001), "int4": entry(48, 0.02) } })
    };
    json!({
        "schema": "qloader-sensitivity", "version": 2,
        "model": { "path": "model.gguf", "architecture": "llama", "quantizable_params": 128 },
        "calibration": { "data_free": false, "source": "alice.txt", "samples": 2, "tokens": 64,
                         "e2e_samples": 1, "e2e_tokens": 32 },
        "measures": ["weight_mse", "proxy", "e2e", "e2e_estimate"],
        "e2e_metric": "kl",
        "e2e_formats": ["int8", "int4"],
        "formats": ["int8", "int4"],
        "tensors": [tensor("blk.0.attn_q.weight", "attn_q"),
                    tensor("blk.0.attn_k.weight", "attn_k")],
        "timings": { "proxy_seconds": 1.0, "e2e_seconds": 2.0, "total_seconds": 3.5, "threads": 2 }
    })
}

/// A valid two-tensor plan (schema `qloader-plan` v1).
pub fn plan() -> Value {
    let tensor = |name: &str, kind: &str, format: &str, bytes: u64| {
        json!({ "name": name, "kind": kind, "layer": 0, "shape": [8, 8], "format": format,
                "runs_as": format, "fallback": false, "pinned": false, "bytes": bytes,
                "latency_ms": 0.001, "loss": 0.01 })
    };
    json!({
        "schema": "qloader-plan", "version": 1, "created_by": "qloader 0.1.0",
        "inputs": {
            "table": { "path": "table.json", "sha256": "0".repeat(64) },
            "profile": { "path": "profile.toml", "sha256": "1".repeat(64) },
            "device": "edge", "model": "model.gguf", "architecture": "llama"
        },
        "constraints": { "budget": "4bpw", "budget_bytes": 160, "device_model_bytes": null,
                         "max_bytes": 160, "max_latency_ms": null, "pins": [],
                         "measure": "e2e_estimate", "activations": "f32", "batch": 1 },
        "solver": { "name": "greedy", "method": "greedy", "proven_optimal": null, "nodes": null,
                    "seconds": 0.001 },
        "totals": { "bytes": 144, "weights": 128, "bits_per_weight": 9.0, "latency_ms": 0.002,
                    "loss": 0.02 },
        "bound": 0.02,
        "gap": { "absolute": 0.0, "relative": 0.0 },
        "exact_check": null,
        "tensors": [tensor("blk.0.attn_q.weight", "attn_q", "int8", 96),
                    tensor("blk.0.attn_k.weight", "attn_k", "int4", 48)]
    })
}

/// A valid hand-written device profile (schema `qloader-profile` v1).
pub const PROFILE: &str = r#"schema = "qloader-profile"
version = 1
name = "edge"

[cpu]
model = "test board"
cores = 4
kernel_tier = "generic"

[memory]
total_bytes = 1073741824
model_bytes = 536870912
read_bandwidth_bytes_per_second = 4.0e9

[[kernels]]
weights = "int8"
activations = "f32"
isa = "generic"
batch1_macs_per_second = 1.0e9
batch8_macs_per_second = 4.0e9

[[kernels]]
weights = "int4"
activations = "f32"
isa = "generic"
batch1_macs_per_second = 2.0e9
batch8_macs_per_second = 3.0e9

[fallbacks]
int2 = "int3"
int3 = "int8"
"#;

fn json_case(
    class: &'static str,
    name: &'static str,
    open: Open,
    v: &Value,
    expected: &str,
) -> Case {
    let bytes = serde_json::to_vec_pretty(v).expect("JSON");
    Case::file(class, name, bytes, open, expected)
}

fn table_case(class: &'static str, edit: impl FnOnce(&mut Value), expected: &str) -> Case {
    let mut t = table();
    edit(&mut t);
    json_case(class, "table.json", Open::Table, &t, expected)
}

/// Every sensitivity-table case.
pub fn table_cases() -> Vec<Case> {
    vec![
        Case::file(
            "table/not-json",
            "table.json",
            b"{\"schema\": \"qloader-sensitivity\",".to_vec(),
            Open::Table,
            "{path}: not a valid sensitivity table: EOF while parsing a value at line 1 column 33",
        ),
        Case::file(
            "table/not-utf8",
            "table.json",
            b"{\"schema\": \"\xff\"}".to_vec(),
            Open::Table,
            "{path}: not a valid sensitivity table: invalid unicode code point at line 1 column \
             13",
        ),
        Case {
            class: "table/oversized",
            files: vec![("table.json".into(), Content::Sparse((256 << 20) + 1))],
            target: "table.json",
            open: Open::Table,
            expected: "{path}: not a valid sensitivity table: larger than the 268435456 bytes \
                       such a file may have"
                .into(),
        },
        table_case(
            "table/missing-field",
            |t| {
                t.as_object_mut().expect("object").remove("formats");
            },
            "{path}: not a valid sensitivity table: missing field `formats` at line 86 column 1",
        ),
        table_case(
            "table/wrong-schema",
            |t| t["schema"] = json!("qloader-plan"),
            "{path}: not a valid sensitivity table: schema is \"qloader-plan\", expected \
             \"qloader-sensitivity\"",
        ),
        table_case(
            "table/wrong-version",
            |t| t["version"] = json!(1),
            "{path}: not a valid sensitivity table: version 1 (this build reads version 2)",
        ),
        table_case(
            "table/no-formats",
            |t| t["formats"] = json!([]),
            "{path}: not a valid sensitivity table: no formats",
        ),
        table_case(
            "table/unknown-format",
            |t| t["formats"] = json!(["int8", "int5"]),
            "{path}: not a valid sensitivity table: unknown weight format `int5` (known: f32, \
             f16, int8, int4, int3, int2, int{8,4,3,2}g{32,64,128}, int5k, int4k, int3k, int2k, nl4k, q4_0, q5_0, q8_0, iq4_nl) \
             at line 18 column 3",
        ),
        table_case(
            "table/unknown-tensor-format",
            |t| {
                let entry = t["tensors"][0]["formats"]["int8"].clone();
                t["tensors"][0]["formats"]["int9"] = entry;
            },
            "{path}: not a valid sensitivity table: tensor blk.0.attn_q.weight: unknown weight \
             format `int9` (known: f32, f16, int8, int4, int3, int2, int{8,4,3,2}g{32,64,128}, \
             int5k, int4k, int3k, int2k, nl4k, q4_0, q5_0, q8_0, iq4_nl) at line 64 column 4",
        ),
        table_case(
            "table/measures-without-weight-mse",
            |t| t["measures"] = json!(["proxy"]),
            "{path}: not a valid sensitivity table: measures must include weight_mse",
        ),
        table_case(
            "table/e2e-without-metric",
            |t| t["e2e_metric"] = json!(null),
            "{path}: not a valid sensitivity table: e2e_metric must be given exactly when e2e is \
             measured",
        ),
        table_case(
            "table/e2e-format-not-listed",
            |t| t["e2e_formats"] = json!(["int8", "int2"]),
            "{path}: not a valid sensitivity table: e2e format int2 is not one of the table's \
             formats",
        ),
        table_case(
            "table/duplicate-tensor",
            |t| t["tensors"][1]["name"] = json!("blk.0.attn_q.weight"),
            "{path}: not a valid sensitivity table: tensor blk.0.attn_q.weight appears twice",
        ),
        table_case(
            "table/unknown-kind",
            |t| t["tensors"][1]["kind"] = json!("conv"),
            "{path}: not a valid sensitivity table: tensor blk.0.attn_k.weight: unknown kind \
             \"conv\"",
        ),
        table_case(
            "table/zero-shape",
            |t| t["tensors"][1]["shape"] = json!([0, 8]),
            "{path}: not a valid sensitivity table: tensor blk.0.attn_k.weight: empty shape [0, \
             8]",
        ),
        table_case(
            "table/absurd-shape",
            |t| t["tensors"][1]["shape"] = json!([1u64 << 32, 1u64 << 32]),
            "{path}: not a valid sensitivity table: tensor blk.0.attn_k.weight: shape \
             [4294967296, 4294967296] has more than 1099511627776 weights",
        ),
        table_case(
            "table/missing-format-entry",
            |t| {
                t["tensors"][1]["formats"].as_object_mut().expect("object").remove("int4");
            },
            "{path}: not a valid sensitivity table: tensor blk.0.attn_k.weight: no entry for int4",
        ),
        table_case(
            "table/extra-format-entry",
            |t| {
                t["tensors"][1]["formats"]["int2"] = t["tensors"][1]["formats"]["int4"].clone();
            },
            "{path}: not a valid sensitivity table: tensor blk.0.attn_k.weight: entries for \
             formats not listed",
        ),
        table_case(
            "table/zero-bytes",
            |t| t["tensors"][1]["formats"]["int4"]["bytes"] = json!(0),
            "{path}: not a valid sensitivity table: tensor blk.0.attn_k.weight at int4: zero \
             bytes",
        ),
        table_case(
            "table/negative-measure",
            |t| t["tensors"][1]["formats"]["int4"]["proxy"] = json!(-1.0),
            "{path}: not a valid sensitivity table: tensor blk.0.attn_k.weight at int4: proxy is \
             -1, expected a finite number ≥ 0",
        ),
        table_case(
            "table/missing-measure",
            |t| t["tensors"][1]["formats"]["int4"]["e2e"] = json!(null),
            "{path}: not a valid sensitivity table: tensor blk.0.attn_k.weight at int4: e2e is \
             missing",
        ),
        {
            // JSON numbers beyond f64 (serde_json refuses them; a NaN or an
            // infinity cannot be written in JSON at all).
            let text = serde_json::to_string_pretty(&table()).expect("JSON");
            let text = text.replacen("\"weight_mse\": 0.02", "\"weight_mse\": 1e999", 1);
            Case::file(
                "table/number-out-of-range",
                "table.json",
                text.into_bytes(),
                Open::Table,
                "{path}: not a valid sensitivity table: number out of range at line 39 column 29",
            )
        },
    ]
}

fn plan_case(class: &'static str, edit: impl FnOnce(&mut Value), expected: &str) -> Case {
    let mut p = plan();
    edit(&mut p);
    json_case(class, "plan.json", Open::Plan, &p, expected)
}

/// Every plan case.
pub fn plan_cases() -> Vec<Case> {
    vec![
        Case::file(
            "plan/not-json",
            "plan.json",
            b"[\"qloader-plan\"".to_vec(),
            Open::Plan,
            "{path}: not a valid plan: EOF while parsing a list at line 1 column 15",
        ),
        Case {
            class: "plan/oversized",
            files: vec![("plan.json".into(), Content::Sparse((64 << 20) + 1))],
            target: "plan.json",
            open: Open::Plan,
            expected: "{path}: not a valid plan: larger than the 67108864 bytes such a file may \
                       have"
                .into(),
        },
        plan_case(
            "plan/missing-field",
            |p| {
                p.as_object_mut().expect("object").remove("totals");
            },
            "{path}: not a valid plan: missing field `totals` at line 76 column 1",
        ),
        plan_case(
            "plan/wrong-schema",
            |p| p["schema"] = json!("qloader-sensitivity"),
            "{path}: not a valid plan: schema is \"qloader-sensitivity\", expected \
             \"qloader-plan\"",
        ),
        plan_case(
            "plan/wrong-version",
            |p| p["version"] = json!(2),
            "{path}: not a valid plan: version 2 (this build reads version 1)",
        ),
        plan_case(
            "plan/unknown-format",
            |p| p["tensors"][1]["format"] = json!("int5"),
            "{path}: not a valid plan: tensor blk.0.attn_k.weight: format: unknown weight format \
             `int5` (known: f32, f16, int8, int4, int3, int2, int{8,4,3,2}g{32,64,128}, int5k, int4k, \
             int3k, int2k, nl4k, q4_0, q5_0, q8_0, iq4_nl) at line 74 column 3",
        ),
        plan_case(
            "plan/unknown-run-format",
            |p| p["tensors"][1]["runs_as"] = json!("fp8"),
            "{path}: not a valid plan: tensor blk.0.attn_k.weight: runs_as: unknown weight \
             format `fp8` (known: f32, f16, int8, int4, int3, int2, int{8,4,3,2}g{32,64,128}, \
             int5k, int4k, int3k, int2k, nl4k, q4_0, q5_0, q8_0, iq4_nl) at line 74 column 3",
        ),
        plan_case(
            "plan/unknown-measure",
            |p| p["constraints"]["measure"] = json!("perplexity"),
            "{path}: not a valid plan: unknown variant `perplexity`, expected one of \
             `weight_mse`, `proxy`, `e2e`, `e2e_estimate` at line 11 column 27",
        ),
        plan_case(
            "plan/duplicate-tensor",
            |p| p["tensors"][1]["name"] = json!("blk.0.attn_q.weight"),
            "{path}: not a valid plan: tensor blk.0.attn_q.weight appears twice",
        ),
        plan_case(
            "plan/negative-loss",
            |p| p["tensors"][1]["loss"] = json!(-0.5),
            "{path}: not a valid plan: tensor blk.0.attn_k.weight: loss is -0.5, expected a \
             finite number ≥ 0",
        ),
        plan_case(
            "plan/totals-disagree",
            |p| p["totals"]["bytes"] = json!(100),
            "{path}: not a valid plan: totals say 100 bytes over 128 weights, the tensors add up \
             to 144 over 128",
        ),
        plan_case(
            "plan/over-its-own-limit",
            |p| p["constraints"]["max_bytes"] = json!(100),
            "{path}: not a valid plan: 144 bytes exceed the plan's own limit of 100",
        ),
        plan_case(
            "plan/bytes-overflow",
            |p| {
                p["tensors"][0]["bytes"] = json!(u64::MAX);
                p["totals"]["bytes"] = json!(u64::MAX);
            },
            "{path}: not a valid plan: tensor blk.0.attn_k.weight: 48 bytes overflow the summed \
             bytes",
        ),
        plan_case(
            "plan/absurd-shape",
            |p| p["tensors"][1]["shape"] = json!([1u64 << 32, 1u64 << 32]),
            "{path}: not a valid plan: tensor blk.0.attn_k.weight: shape [4294967296, \
             4294967296] has more than 1099511627776 weights",
        ),
    ]
}

fn profile_case(class: &'static str, from: &str, to: &str, expected: &str) -> Case {
    assert!(PROFILE.contains(from), "{class}: profile has no {from:?}");
    let text = PROFILE.replacen(from, to, 1);
    Case::file(class, "profile.toml", text.into_bytes(), Open::Profile, expected)
}

/// Every device-profile case.
pub fn profile_cases() -> Vec<Case> {
    vec![
        Case::file(
            "profile/not-toml",
            "profile.toml",
            b"schema = \"qloader-profile\nversion = 1\n".to_vec(),
            Open::Profile,
            "{path}: not a valid device profile: TOML parse error at line 1, column 26\n  |\n1 | \
             schema = \"qloader-profile\n  |                          ^\ninvalid basic string, \
             expected `\"`\n",
        ),
        Case::file(
            "profile/not-utf8",
            "profile.toml",
            b"name = \"\xff\"\n".to_vec(),
            Open::Profile,
            "{path}: not a valid device profile: not UTF-8 text",
        ),
        Case {
            class: "profile/oversized",
            files: vec![("profile.toml".into(), Content::Sparse((1 << 20) + 1))],
            target: "profile.toml",
            open: Open::Profile,
            expected: "{path}: not a valid device profile: larger than the 1048576 bytes such a \
                       file may have"
                .into(),
        },
        profile_case(
            "profile/missing-field",
            "name = \"edge\"\n",
            "",
            "{path}: not a valid device profile: TOML parse error at line 1, column 1\n  |\n1 | \
             schema = \"qloader-profile\"\n  | ^\nmissing field `name`\n",
        ),
        profile_case(
            "profile/unknown-field",
            "cores = 4",
            "cores = 4\nsockets = 2",
            "{path}: not a valid device profile: TOML parse error at line 8, column 1\n  |\n8 | \
             sockets = 2\n  | ^^^^^^^\nunknown field `sockets`, expected one of `model`, \
             `cores`, `features`, `kernel_tier`, `last_level_cache_bytes`\n",
        ),
        profile_case(
            "profile/wrong-type",
            "cores = 4",
            "cores = \"four\"",
            "{path}: not a valid device profile: TOML parse error at line 7, column 9\n  |\n7 | \
             cores = \"four\"\n  |         ^^^^^^\ninvalid type: string \"four\", expected \
             usize\n",
        ),
        profile_case(
            "profile/negative-count",
            "cores = 4",
            "cores = -4",
            "{path}: not a valid device profile: TOML parse error at line 7, column 9\n  |\n7 | \
             cores = -4\n  |         ^^\ninvalid value: integer `-4`, expected usize\n",
        ),
        profile_case(
            "profile/wrong-schema",
            "\"qloader-profile\"",
            "\"qloader-plan\"",
            "{path}: not a valid device profile: schema is \"qloader-plan\", expected \
             \"qloader-profile\"",
        ),
        profile_case(
            "profile/wrong-version",
            "version = 1",
            "version = 2",
            "{path}: not a valid device profile: version 2 (this build reads version 1)",
        ),
        profile_case(
            "profile/empty-name",
            "name = \"edge\"",
            "name = \" \"",
            "{path}: not a valid device profile: the name is empty",
        ),
        profile_case(
            "profile/zero-cores",
            "cores = 4",
            "cores = 0",
            "{path}: not a valid device profile: cpu.cores is 0",
        ),
        profile_case(
            "profile/zero-memory",
            "model_bytes = 536870912",
            "model_bytes = 0",
            "{path}: not a valid device profile: memory.model_bytes is 0",
        ),
        profile_case(
            "profile/model-larger-than-memory",
            "model_bytes = 536870912",
            "model_bytes = 2147483648",
            "{path}: not a valid device profile: memory.model_bytes (2147483648) exceeds \
             total_bytes (1073741824)",
        ),
        profile_case(
            "profile/negative-bandwidth",
            "= 4.0e9",
            "= -4.0e9",
            "{path}: not a valid device profile: memory.read_bandwidth_bytes_per_second is \
             -4000000000",
        ),
        profile_case(
            "profile/infinite-bandwidth",
            "= 4.0e9",
            "= inf",
            "{path}: not a valid device profile: memory.read_bandwidth_bytes_per_second is inf",
        ),
        profile_case(
            "profile/no-kernels",
            "[[kernels]]",
            "[[ignored]]",
            "{path}: not a valid device profile: TOML parse error at line 15, column 3\n   |\n15 \
             | [[ignored]]\n   |   ^^^^^^^\nunknown field `ignored`, expected one of `schema`, \
             `version`, `name`, `description`, `measured`, `layouts`, `cpu`, `memory`, `kernels`, \
             `fallbacks`\n",
        ),
        profile_case(
            "profile/unknown-weight-family",
            "weights = \"int4\"",
            "weights = \"int5\"",
            "{path}: not a valid device profile: TOML parse error at line 23, column 11\n   |\n23 \
             | weights = \"int5\"\n   |           ^^^^^^\nunknown format family `int5` (known: \
             f32, f16, int8, int4, int3, int2, nl4)\n",
        ),
        profile_case(
            "profile/unknown-activations",
            "activations = \"f32\"",
            "activations = \"bf16\"",
            "{path}: not a valid device profile: TOML parse error at line 17, column 15\n   |\n17 \
             | activations = \"bf16\"\n   |               ^^^^^^\nunknown activation format \
             `bf16` (known: f32, int8)\n",
        ),
        profile_case(
            "profile/duplicate-kernel",
            "weights = \"int4\"",
            "weights = \"int8\"",
            "{path}: not a valid device profile: kernel int8 × f32 is listed twice",
        ),
        profile_case(
            "profile/zero-speed",
            "batch1_macs_per_second = 2.0e9",
            "batch1_macs_per_second = 0.0",
            "{path}: not a valid device profile: kernel int4 × f32: batch1_macs_per_second is 0",
        ),
        profile_case(
            "profile/nan-speed",
            "batch8_macs_per_second = 3.0e9",
            "batch8_macs_per_second = nan",
            "{path}: not a valid device profile: kernel int4 × f32: batch8_macs_per_second is NaN",
        ),
        profile_case(
            "profile/fallback-unknown-family",
            "int2 = \"int3\"",
            "int1 = \"int3\"",
            "{path}: not a valid device profile: TOML parse error at line 30, column 1\n   |\n30 \
             | int1 = \"int3\"\n   | ^^^^\nunknown format family `int1` (known: f32, f16, int8, \
             int4, int3, int2, nl4)\n",
        ),
        profile_case(
            "profile/fallback-for-kernel-family",
            "int2 = \"int3\"",
            "int4 = \"int8\"",
            "{path}: not a valid device profile: fallback for int4, which has a kernel",
        ),
        profile_case(
            "profile/fallback-to-no-kernel",
            "int3 = \"int8\"",
            "int3 = \"f16\"",
            "{path}: not a valid device profile: fallback int3 = f16 ends at f16, which has no \
             kernel",
        ),
        profile_case(
            "profile/fallback-cycle",
            "int3 = \"int8\"",
            "int3 = \"int2\"",
            "{path}: not a valid device profile: fallbacks from int3 go round in a cycle",
        ),
    ]
}
