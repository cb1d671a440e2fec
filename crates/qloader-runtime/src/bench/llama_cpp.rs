//! llama.cpp's tools on this machine: finding the build `scripts/llama-cpp.sh`
//! made for this CPU in the cache (or a directory given), running a tool with
//! its output captured, llama.cpp's importance matrix and quantizer, and the
//! GGUF llama.cpp is compared on — by default a Q4_0 made once from the
//! SmolLM2 fixture with `llama-quantize`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Result, RuntimeError};

/// The benchmark tool.
pub const LLAMA_BENCH: &str = "llama-bench";
/// The quantizer.
pub const LLAMA_QUANTIZE: &str = "llama-quantize";
/// The importance-matrix tool.
pub const LLAMA_IMATRIX: &str = "llama-imatrix";
/// The default comparison model's file name, in the cache's `llama-cpp`
/// folder.
pub const COMPARISON_MODEL: &str = "smollm2-q4_0.gguf";
/// Its llama.cpp type.
pub const COMPARISON_TYPE: &str = "Q4_0";

/// The folder of the cache that scripts/llama-cpp.sh builds into.
pub fn root(cache: &Path) -> PathBuf {
    cache.join("llama-cpp")
}

/// A directory holding llama.cpp's tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaCppTools {
    /// The directory (a build's `bin`).
    pub bin: PathBuf,
}

impl LlamaCppTools {
    /// The tools in `bin`, which must hold `llama-bench`.
    pub fn in_dir(bin: &Path) -> Result<Self> {
        if !bin.join(LLAMA_BENCH).is_file() {
            return Err(RuntimeError::LlamaCpp(format!("{} has no {LLAMA_BENCH}", bin.display())));
        }
        Ok(Self { bin: bin.to_owned() })
    }

    /// The build scripts/llama-cpp.sh made in `cache` for this CPU: a
    /// completed `build-*` folder whose recorded options are the ones the
    /// script chooses from this CPU's flags (the newest, if several are).
    pub fn find_in_cache(cache: &Path) -> Result<Self> {
        let wanted = build_options(&cpu_flags());
        let root = root(cache);
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        let mut other_builds = 0;
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                if !entry.file_name().to_string_lossy().starts_with("build-") {
                    continue;
                }
                let dir = entry.path();
                let complete = dir.join(".complete");
                let Ok(recorded) = std::fs::read_to_string(&complete) else { continue };
                let options: Vec<&str> =
                    recorded.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                if options != wanted || !dir.join("bin").join(LLAMA_BENCH).is_file() {
                    other_builds += 1;
                    continue;
                }
                let modified = std::fs::metadata(&complete)
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                found.push((modified, dir.join("bin")));
            }
        }
        match found.into_iter().max() {
            Some((_, bin)) => Ok(Self { bin }),
            None => Err(RuntimeError::LlamaCpp(format!(
                "no llama.cpp build for this CPU in {}{}: run scripts/llama-cpp.sh first (it \
                 builds {LLAMA_BENCH} there once and prints its bin directory)",
                root.display(),
                if other_builds > 0 {
                    format!(" ({other_builds} built for other CPU features)")
                } else {
                    String::new()
                }
            ))),
        }
    }

    /// The path of tool `name`.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }
}

/// The ggml options scripts/llama-cpp.sh builds with for a CPU whose
/// `/proc/cpuinfo` flags are `flags` — in its order, as it records them in
/// the build's `.complete`. Keep in step with the script.
pub fn build_options(flags: &str) -> Vec<String> {
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let mut options: Vec<String> =
        ["NATIVE", "AMX_TILE", "AMX_INT8", "AMX_BF16"].map(|o| format!("-DGGML_{o}=OFF")).into();
    for (flag, option) in [
        ("avx", "AVX"),
        ("avx2", "AVX2"),
        ("fma", "FMA"),
        ("f16c", "F16C"),
        ("bmi2", "BMI2"),
        ("avx_vnni", "AVX_VNNI"),
        ("avx512f", "AVX512"),
        ("avx512_vbmi", "AVX512_VBMI"),
        ("avx512_vnni", "AVX512_VNNI"),
        ("avx512_bf16", "AVX512_BF16"),
    ] {
        options.push(format!("-DGGML_{option}={}", if has(flag) { "ON" } else { "OFF" }));
    }
    let full_avx512 = ["avx512bw", "avx512vl", "avx512dq", "avx512cd"].iter().all(|f| has(f));
    if has("avx512f") && !full_avx512 {
        for option in ["AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"] {
            options.push(format!("-DGGML_{option}=OFF"));
        }
    }
    options
}

/// The first `flags` line of `/proc/cpuinfo` (empty where there is none).
fn cpu_flags() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("flags"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.to_owned())
        })
        .unwrap_or_default()
}

/// Runs `command` (described as `what` in errors) and returns its standard
/// output; a failure to start or a failing exit is an error with the end of
/// its standard error.
pub(crate) fn run_tool(command: &mut Command, what: &str) -> Result<Vec<u8>> {
    let output = command
        .output()
        .map_err(|e| RuntimeError::LlamaCpp(format!("could not run {what}: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(RuntimeError::LlamaCpp(format!(
            "{what} failed ({}):\n{}",
            output.status,
            tail.join("\n")
        )));
    }
    Ok(output.stdout)
}

/// The default comparison model: [`COMPARISON_MODEL`] in the cache's
/// `llama-cpp` folder, made from `source` (the SmolLM2 fixture) with
/// `llama-quantize --allow-requantize … Q4_0` the first time.
pub fn comparison_model(tools: &LlamaCppTools, cache: &Path, source: &Path) -> Result<PathBuf> {
    let dir = root(cache);
    let target = dir.join(COMPARISON_MODEL);
    if target.is_file() {
        return Ok(target);
    }
    if !source.is_file() {
        return Err(RuntimeError::LlamaCpp(format!(
            "{} does not exist, so there is nothing to make {COMPARISON_MODEL} from \
             (run scripts/fetch-fixtures.sh, or give the comparison GGUF)",
            source.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| RuntimeError::LlamaCpp(format!("{}: {e}", dir.display())))?;
    quantize(tools, source, None, COMPARISON_TYPE, &target)?;
    Ok(target)
}

/// Writes `target` with llama.cpp's `llama-quantize --allow-requantize`:
/// `source` in llama.cpp type `ggml_type` (`Q4_K_M`, `IQ2_XS`, …), with the
/// importance matrix `imatrix` if given. The file is written under a
/// temporary name and renamed, so an interrupted run leaves no partial
/// model behind.
pub fn quantize(
    tools: &LlamaCppTools,
    source: &Path,
    imatrix: Option<&Path>,
    ggml_type: &str,
    target: &Path,
) -> Result<()> {
    let mut command = Command::new(tools.tool(LLAMA_QUANTIZE));
    command.arg("--allow-requantize");
    if let Some(imatrix) = imatrix {
        command.arg("--imatrix").arg(imatrix);
    }
    write_via_temporary(target, |temporary| {
        command.arg(source).arg(temporary).arg(ggml_type);
        run_tool(&mut command, &format!("{LLAMA_QUANTIZE} {ggml_type}")).map(drop)
    })
}

/// Writes `target` with llama.cpp's `llama-imatrix`: the importance matrix
/// of `model` over `chunks` windows of `context` tokens of `text`.
pub fn importance_matrix(
    tools: &LlamaCppTools,
    model: &Path,
    text: &Path,
    context: usize,
    chunks: usize,
    target: &Path,
) -> Result<()> {
    write_via_temporary(target, |temporary| {
        let mut command = Command::new(tools.tool(LLAMA_IMATRIX));
        command
            .arg("-m")
            .arg(model)
            .arg("-f")
            .arg(text)
            .args(["-c", &context.to_string(), "--chunks", &chunks.to_string()])
            .arg("-o")
            .arg(temporary);
        run_tool(&mut command, LLAMA_IMATRIX).map(drop)
    })
}

/// Runs `make` on a temporary path beside `target` and renames it to
/// `target` once `make` succeeded and the file exists; removes it otherwise.
fn write_via_temporary(target: &Path, make: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = target.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy());
    let temporary = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let made = make(&temporary).and_then(|()| {
        std::fs::rename(&temporary, target).map_err(|e| {
            RuntimeError::LlamaCpp(format!("{} (written by llama.cpp): {e}", temporary.display()))
        })
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    const XEON_FLAGS: &str = "fpu sse avx f16c avx2 fma bmi2 avx512f avx512dq avx512cd avx512bw \
                              avx512vl avx512_vnni avx512_bf16 avx_vnni amx_tile";

    #[test]
    fn options_match_the_script() {
        // What scripts/llama-cpp.sh recorded on the 2-core Xeon.
        let recorded = "-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
                        -DGGML_AMX_BF16=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
                        -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=ON -DGGML_AVX512=ON \
                        -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON";
        assert_eq!(build_options(XEON_FLAGS), recorded.split(' ').collect::<Vec<_>>());
        // AVX-512 without its BW/VL/DQ/CD subsets: switched off again.
        let partial = build_options("avx avx512f avx512_vnni");
        assert!(partial.ends_with(&[
            "-DGGML_AVX512=OFF".to_owned(),
            "-DGGML_AVX512_VBMI=OFF".into(),
            "-DGGML_AVX512_VNNI=OFF".into(),
            "-DGGML_AVX512_BF16=OFF".into()
        ]));
        assert!(build_options("").iter().all(|o| o.ends_with("=OFF")));
    }

    #[test]
    fn finds_only_a_complete_build_for_this_cpu() {
        let cache = tempfile::tempdir().unwrap();
        let err = LlamaCppTools::find_in_cache(cache.path()).unwrap_err().to_string();
        assert!(err.contains("run scripts/llama-cpp.sh first"), "{err}");

        let build = root(cache.path()).join("build-0123");
        std::fs::create_dir_all(build.join("bin")).unwrap();
        std::fs::write(build.join("bin").join(LLAMA_BENCH), b"").unwrap();
        std::fs::write(build.join(".complete"), "-DGGML_NATIVE=ON\n").unwrap();
        let err = LlamaCppTools::find_in_cache(cache.path()).unwrap_err().to_string();
        assert!(err.contains("1 built for other CPU features"), "{err}");

        let options = build_options(&cpu_flags()).join("\n") + "\n";
        std::fs::write(build.join(".complete"), options).unwrap();
        let tools = LlamaCppTools::find_in_cache(cache.path()).unwrap();
        assert_eq!(tools.bin, build.join("bin"));
        assert_eq!(LlamaCppTools::in_dir(&tools.bin).unwrap(), tools);
        let err = LlamaCppTools::in_dir(cache.path()).unwrap_err().to_string();
        assert!(err.contains("has no llama-bench"), "{err}");
    }

    #[test]
    fn a_missing_fixture_or_quantizer_is_a_clear_error_and_leaves_nothing() {
        let cache = tempfile::tempdir().unwrap();
        let tools = LlamaCppTools { bin: cache.path().join("no-bin") };
        let err = comparison_model(&tools, cache.path(), &cache.path().join("none.gguf"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("none.gguf does not exist"), "{err}");

        let source = cache.path().join("model.gguf");
        std::fs::write(&source, b"GGUF").unwrap();
        let err = comparison_model(&tools, cache.path(), &source).unwrap_err().to_string();
        assert!(err.contains("could not run llama-quantize"), "{err}");
        let left: Vec<_> = std::fs::read_dir(root(cache.path())).unwrap().collect();
        assert!(left.is_empty(), "no temporary or partial model left: {left:?}");
    }
}
