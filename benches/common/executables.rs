//! The executables the process-level benches start, built as the package is built: `bootstrap`
//! by `cargo build -p hello-lambda --bin bootstrap` (the shipped default features; the cold-start
//! bench's `segments` role also gets `bootstrap-segments`, the same with `--features
//! xray-segments`), the baselines by `cargo build -p bare-work`,
//! `cargo build -p bare-hello` and (the cold-start and throughput benches) `cargo build -p lr-otel`
//! and `cargo build -p lr-logs` (`benches/baselines/`), each in its own cargo invocation, with
//! the profile this bench executable was built with (`cargo bench`: `--release`, the workspace's
//! `[profile.release]`, the one `bootstrap` ships with; `cargo test`: the dev profile).
//!
//! Separate invocations, because cargo unifies the features of the packages one invocation
//! builds: `bootstrap` built next to `bare-work` would get `lambda_runtime`'s `concurrency-tokio`,
//! and `bare-work` would get `hello-lambda`'s exporters. And not the `bootstrap` `cargo bench`
//! builds for this bench (`CARGO_BIN_EXE_bootstrap`): that one has the dev-dependencies'
//! features unified into it, which measured about 4% faster to start than the `cargo build` of
//! the same code (docs/cold-start-levers.md).
//!
//! Each executable built is copied to `<target>/<profile>/bench-executables/`, and the benches
//! run those copies: `cargo bench` writes `<target>/<profile>/bootstrap` itself (with the
//! dev-dependencies' features) whenever it rebuilds the package, so the file there is not always
//! the `cargo build` one. `BENCH_BUILD=no` skips the builds and takes the copies kept by the last
//! one (put another executable there to measure it instead).
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// `bootstrap` and the two baselines, where cargo wrote them.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The shipped build: the package's default features.
    pub(crate) bootstrap: PathBuf,
    /// The same with `--features xray-segments` (segment documents are opt-in), when asked for:
    /// the cold-start bench's `segments` role.
    pub(crate) bootstrap_segments: Option<PathBuf>,
    pub(crate) bare_work: PathBuf,
    pub(crate) bare_hello: PathBuf,
}

/// The profile directory of this bench executable: `<target>/<profile>/deps/<bench>-<hash>` →
/// `<target>/<profile>`.
pub(crate) fn profile_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .expect("the bench executable lives in <target>/<profile>/deps")
}

/// The target directory this bench executable was built in.
pub(crate) fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .map(Path::to_path_buf)
        .expect("<target>/<profile>")
}

/// Where a bench writes its JSON: `variable` when it is set (and not empty), else `file` in the
/// target directory this bench executable was built in.
pub(crate) fn json_path(variable: &str, file: &str) -> PathBuf {
    std::env::var_os(variable)
        .filter(|v| !v.is_empty())
        .map_or_else(|| target_dir().join(file), PathBuf::from)
}

/// The cargo arguments that select the bench executable's profile.
fn profile_args() -> Vec<String> {
    let dir = profile_dir();
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => Vec::new(),
        Some("release") | None => vec!["--release".into()],
        Some(other) => vec!["--profile".into(), other.into()],
    }
}

/// Builds `bootstrap`, `bare-work` and `bare-hello` (a cargo invocation each, see the module
/// documentation), and with `segments` also `bootstrap` with `--features xray-segments`, unless
/// `BENCH_BUILD=no`; returns where they are.
pub(crate) fn build(segments: bool) -> Result<Built, String> {
    let dir = profile_dir();
    let bootstrap = dir.join("bootstrap");
    // Both builds write `<profile>/bootstrap`: each is kept under its own name before the next,
    // the shipped one last (so that `<profile>/bootstrap` is it).
    let bootstrap_segments = if segments {
        cargo_build(&[
            "-p",
            "hello-lambda",
            "--bin",
            "bootstrap",
            "--features",
            "xray-segments",
        ])?;
        Some(keep_as(&bootstrap, "bootstrap-segments")?)
    } else {
        None
    };
    cargo_build(&["-p", "hello-lambda", "--bin", "bootstrap"])?;
    let bootstrap = keep(&bootstrap)?;
    for package in ["bare-work", "bare-hello"] {
        cargo_build(&["-p", package])?;
    }
    Ok(Built {
        bootstrap,
        bootstrap_segments,
        bare_work: keep(&dir.join("bare-work"))?,
        bare_hello: keep(&dir.join("bare-hello"))?,
    })
}

/// Copies `built` (unless `BENCH_BUILD=no`) to `bench-executables/` beside it; returns the copy.
fn keep(built: &Path) -> Result<PathBuf, String> {
    let name = built
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or("an executable's path names a file")?;
    keep_as(built, name)
}

/// [`keep`] under `name`.
fn keep_as(built: &Path, name: &str) -> Result<PathBuf, String> {
    let dir = profile_dir().join("bench-executables");
    let kept = dir.join(name);
    if std::env::var("BENCH_BUILD").as_deref() != Ok("no") {
        present(built)?;
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::copy(built, &kept))
            .map_err(|err| format!("keeping {} in {}: {err}", built.display(), dir.display()))?;
    }
    present(&kept)?;
    Ok(kept)
}

/// Builds one of the `lambda_runtime` stacks the benches compare ours with (`lr-otel`: its own
/// OpenTelemetry stack; `lr-logs`: its documented logging alone), each a package and a binary of
/// that name in `benches/baselines/`, in its own cargo invocation, unless `BENCH_BUILD=no`;
/// returns where it is.
pub(crate) fn build_lambda_runtime_stack(package: &str) -> Result<PathBuf, String> {
    cargo_build(&["-p", package])?;
    keep(&profile_dir().join(package))
}

fn present(path: &Path) -> Result<(), String> {
    if path.is_file() {
        Ok(())
    } else {
        Err(format!(
            "{} is missing (BENCH_BUILD=no takes the executables a build kept)",
            path.display()
        ))
    }
}

/// One `cargo build` of `package` (the `-p ...` arguments) with this bench's profile, unless
/// `BENCH_BUILD=no`.
fn cargo_build(package: &[&str]) -> Result<(), String> {
    if std::env::var("BENCH_BUILD").as_deref() == Ok("no") {
        return Ok(());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut command = Command::new(&cargo);
    without_cargo_run_variables(&mut command);
    command
        .arg("build")
        .arg("--quiet")
        .args(profile_args())
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir())
        .args(package);
    let shown = format!(
        "cargo build {} {}",
        profile_args().join(" "),
        package.join(" ")
    );
    println!("building: {shown}");
    let status = command
        .status()
        .map_err(|err| format!("{shown}: could not run cargo: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown}: {status}"))
    }
}

/// Removes the variables cargo sets for the bench it runs (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_NAME`, ...) from the nested build's environment. Build scripts watch some of them
/// (`ring`'s: `cargo:rerun-if-env-changed=CARGO_PKG_NAME`, ...), so with them the nested build
/// would rebuild `ring` and all that depends on it, and the next `cargo bench` would rebuild them
/// back.
fn without_cargo_run_variables(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo = matches!(
            name,
            "CARGO"
                | "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        ) || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_");
        if set_by_cargo {
            command.env_remove(name);
        }
    }
}

/// Copies `from` into `dir` as `name`: Lambda runs a file unpacked from the zip, and the same
/// bytes started measurably slower from the file the linker had just written.
pub(crate) fn stage(from: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to)
        .unwrap_or_else(|err| panic!("copy {} to {}: {err}", from.display(), to.display()));
    to
}
