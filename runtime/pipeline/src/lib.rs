//! `mr-pipeline`: the pipeline file, and the pipeline as a graph.
//!
//! A pipeline file (TOML) names stages; each is a job (a `.wasm`, or a job project directory
//! built first) with its inputs (input specs as `mr-host run --input` takes them, or
//! `stage:NAME` for another stage's output), parameters and settings:
//!
//! ```toml
//! name = "weblogs"              # optional: the file's stem by default
//!
//! [defaults]                    # optional: settings every stage starts from
//! reducers = 2
//!
//! [stages.count]
//! job = "wc.wasm"               # paths are relative to the pipeline file
//! input = ["logs/*.txt"]
//! params = { min = "3" }
//!
//! [stages.recount]
//! job = "jobs/recount"          # a job project directory is built first
//! input = ["stage:count"]
//! verify = "sha256"             # check upstream parts' SHA-256, not only their sizes
//! ```
//!
//! [`PipelineFile::parse`] reads it and [`PipelineFile::resolve`] checks it against the jobs
//! before anything runs; every error names the file, the line and the stage (an unknown stage
//! reference, a cycle, a job without the phase a setting needs, a parameter the job does not
//! declare, an unknown setting). The result is an [`mr_exec::PipelineDef`], which `mr-exec`
//! records and runs. [`text`] and [`dot`] draw a pipeline, with each stage's state when known.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use mr_engine::JobComponent;
use mr_exec::{PipelineDef, StageDef, StageInput, SubmitSpec};
use serde::Deserialize;
use toml::Spanned;

/// A pipeline file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read or is not valid TOML for a pipeline (the message has the line).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A stage is wrong.
    #[error("{path}:{line}: stage {stage}: {message}")]
    Stage {
        /// The file.
        path: String,
        /// The line (from 1).
        line: usize,
        /// The stage.
        stage: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    name: Option<String>,
    #[serde(default)]
    defaults: toml::Table,
    #[serde(default)]
    stages: IndexMap<String, Spanned<StageToml>>,
}

#[derive(Deserialize)]
struct StageToml {
    job: Spanned<String>,
    input: Option<Spanned<toml::Value>>,
    params: Option<Spanned<toml::Table>>,
    verify: Option<Spanned<String>>,
    #[serde(flatten)]
    settings: toml::Table,
}

/// A stage as the file gives it.
#[derive(Debug, Clone)]
pub struct FileStage {
    /// Its name.
    pub name: String,
    /// The line of its `[stages.NAME]` header.
    pub line: usize,
    /// Its job, as written.
    pub job: String,
    job_line: usize,
    /// Its inputs, as written.
    pub inputs: Vec<String>,
    input_line: usize,
    params: BTreeMap<String, String>,
    params_line: usize,
    settings: serde_json::Map<String, serde_json::Value>,
    verify_sha256: bool,
}

/// A parsed pipeline file.
#[derive(Debug, Clone)]
pub struct PipelineFile {
    /// The file.
    pub path: PathBuf,
    /// The pipeline's name.
    pub name: String,
    /// Its stages, in file order.
    pub stages: Vec<FileStage>,
}

/// Settings a pipeline sets itself, per stage.
const SET_BY_THE_PIPELINE: &[&str] = &["inputs", "output", "overwrite"];

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl PipelineFile {
    /// Reads and parses the pipeline file at `path` (nothing is loaded or built yet).
    pub fn parse(path: &Path) -> Result<PipelineFile, FileError> {
        let text = std::fs::read_to_string(path).map_err(|e| FileError::File {
            path: path.display().to_string(),
            message: format!("cannot read the pipeline file: {e}"),
        })?;
        Self::parse_text(path, &text)
    }

    /// Parses `text`, the content of the pipeline file at `path`.
    pub fn parse_text(path: &Path, text: &str) -> Result<PipelineFile, FileError> {
        let shown = path.display().to_string();
        let file: FileToml = toml::from_str(text).map_err(|e| FileError::File {
            path: shown.clone(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        if file.stages.is_empty() {
            return Err(FileError::File {
                path: shown,
                message:
                    "the pipeline has no stages: add a [stages.NAME] table with `job` and `input`"
                        .into(),
            });
        }
        let name = file.name.unwrap_or_else(|| {
            path.file_stem()
                .map_or("pipeline".into(), |s| s.to_string_lossy().into_owned())
        });
        let mut stages = Vec::new();
        for (stage_name, stage) in file.stages {
            let line = line_of(text, stage.span().start);
            let at = |line: usize, message: String| FileError::Stage {
                path: shown.clone(),
                line,
                stage: stage_name.clone(),
                message,
            };
            mr_exec::check_stage_name(&stage_name).map_err(|m| at(line, m))?;
            let stage = stage.into_inner();
            let Some(input) = stage.input else {
                return Err(at(
                    line,
                    "it has no `input`: give input specs or `stage:NAME`, e.g. input = [\"logs/*.txt\"]".into(),
                ));
            };
            let input_line = line_of(text, input.span().start);
            let inputs: Vec<String> = match input.into_inner() {
                toml::Value::String(s) => vec![s],
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s),
                        other => Err(at(
                            input_line,
                            format!("`input` holds {other}; every input is a string"),
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(at(
                        input_line,
                        format!("`input` is {other}; give a string or a list of strings"),
                    ));
                }
            };
            if inputs.is_empty() {
                return Err(at(input_line, "`input` is empty".into()));
            }
            let (params, params_line) = match stage.params {
                Some(p) => {
                    let params_line = line_of(text, p.span().start);
                    let params = p
                        .into_inner()
                        .into_iter()
                        .map(|(k, v)| match v {
                            toml::Value::String(s) => Ok((k, s)),
                            toml::Value::Integer(n) => Ok((k, n.to_string())),
                            toml::Value::Float(f) => Ok((k, f.to_string())),
                            toml::Value::Boolean(b) => Ok((k, b.to_string())),
                            other => Err(at(
                                params_line,
                                format!(
                                    "parameter `{k}` is {other}; give a string, number or boolean"
                                ),
                            )),
                        })
                        .collect::<Result<_, _>>()?;
                    (params, params_line)
                }
                None => (BTreeMap::new(), line),
            };
            let verify_sha256 = match &stage.verify {
                None => false,
                Some(v) => match v.get_ref().as_str() {
                    "size" => false,
                    "sha256" => true,
                    other => {
                        return Err(at(
                            line_of(text, v.span().start),
                            format!("verify = {other:?}: use \"size\" (the default) or \"sha256\""),
                        ));
                    }
                },
            };
            // Defaults first, the stage's own settings over them; `batch-size` and
            // `batch_size` are the same setting.
            let mut settings = serde_json::Map::new();
            for (key, value) in file.defaults.iter().chain(stage.settings.iter()) {
                let key = key.replace('-', "_");
                if SET_BY_THE_PIPELINE.contains(&key.as_str()) || key == "params" {
                    return Err(at(
                        line,
                        format!(
                            "`{key}` is set by the pipeline (inputs come from `input`, the output is OUTPUT/{stage_name})"
                        ),
                    ));
                }
                settings.insert(
                    key,
                    serde_json::to_value(value).expect("TOML values are JSON values"),
                );
            }
            let stage = FileStage {
                name: stage_name.clone(),
                line,
                job: stage.job.get_ref().clone(),
                job_line: line_of(text, stage.job.span().start),
                inputs,
                input_line,
                params,
                params_line,
                settings,
                verify_sha256,
            };
            // Settings are checked now, with no job loaded, so a typo costs no build.
            stage.submit_spec(Vec::new()).map_err(|m| at(line, m))?;
            stages.push(stage);
        }
        let file = PipelineFile {
            path: path.to_owned(),
            name,
            stages,
        };
        file.check_graph()?;
        Ok(file)
    }

    fn at(&self, stage: &FileStage, line: usize, message: String) -> FileError {
        FileError::Stage {
            path: self.path.display().to_string(),
            line,
            stage: stage.name.clone(),
            message,
        }
    }

    /// Every `stage:NAME` names a stage, and no stage reads its own output, even indirectly.
    fn check_graph(&self) -> Result<(), FileError> {
        for stage in &self.stages {
            for input in &stage.inputs {
                if let StageInput::Stage(up) = StageInput::parse(input) {
                    if up == stage.name {
                        return Err(self.at(
                            stage,
                            stage.input_line,
                            "it reads its own output (stage:{up})".replace("{up}", &up),
                        ));
                    }
                    if !self.stages.iter().any(|s| s.name == up) {
                        let names: Vec<&str> =
                            self.stages.iter().map(|s| s.name.as_str()).collect();
                        return Err(self.at(
                            stage,
                            stage.input_line,
                            format!(
                                "input stage:{up} names no stage of this pipeline (its stages: {})",
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        let shapes: Vec<StageDef> = self
            .stages
            .iter()
            .map(|s| StageDef {
                name: s.name.clone(),
                component: PathBuf::new(),
                component_sha256: String::new(),
                inputs: s.inputs.iter().map(|i| StageInput::parse(i)).collect(),
                settings: SubmitSpec::default(),
                verify_sha256: false,
            })
            .collect();
        if let Err(cycle) = mr_exec::topological_order(&shapes) {
            let first = self
                .stages
                .iter()
                .find(|s| s.name == cycle[0])
                .expect("a cycle names stages");
            return Err(self.at(
                first,
                first.input_line,
                format!(
                    "the stages form a cycle: {} (a stage cannot read, even indirectly, its own output)",
                    cycle.join(" -> ")
                ),
            ));
        }
        Ok(())
    }

    /// The directory the file's relative paths start from.
    fn base(&self) -> PathBuf {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        // `/p/./logs` reads as `/p/logs` in messages.
        dir.components().collect()
    }

    /// Each stage's job path, absolute (a `.wasm`, or a job project directory).
    pub fn job_paths(&self) -> Vec<(String, PathBuf)> {
        let base = self.base();
        self.stages
            .iter()
            .map(|s| (s.name.clone(), base.join(&s.job)))
            .collect()
    }

    /// Checks every stage against its job and gives the pipeline as `mr-exec` runs it, writing
    /// to `output`. `load` turns a stage's job path (absolute) into its component, building a
    /// project directory first; its error is reported at the stage's `job` line.
    pub fn resolve(
        &self,
        output: &Path,
        load: &mut dyn FnMut(&Path) -> Result<Arc<JobComponent>, String>,
    ) -> Result<PipelineDef, FileError> {
        let base = self.base();
        let mut stages = Vec::new();
        for stage in &self.stages {
            let job_path = base.join(&stage.job);
            let component = load(&job_path).map_err(|m| self.at(stage, stage.job_line, m))?;
            let info = component.info();
            if stage.settings.contains_key("reducers") && !info.reduce {
                return Err(self.at(
                    stage,
                    stage.line,
                    format!(
                        "it sets `reducers`, but its job `{}` ({}) has no reduce phase",
                        info.name,
                        job_path.display()
                    ),
                ));
            }
            component
                .with_params(&stage.params)
                .map_err(|m| self.at(stage, stage.params_line, m))?;
            let inputs: Vec<StageInput> = stage
                .inputs
                .iter()
                .map(|i| match StageInput::parse(i) {
                    StageInput::Spec(spec) => StageInput::Spec(rebase(&base, &spec)),
                    stage => stage,
                })
                .collect();
            let settings = stage
                .submit_spec(Vec::new())
                .map_err(|m| self.at(stage, stage.line, m))?;
            stages.push(StageDef {
                name: stage.name.clone(),
                component: std::path::absolute(component.path())
                    .unwrap_or_else(|_| component.path().to_owned()),
                component_sha256: component.sha256().to_owned(),
                inputs,
                settings,
                verify_sha256: stage.verify_sha256,
            });
        }
        let def = PipelineDef {
            name: self.name.clone(),
            output: std::path::absolute(output).unwrap_or_else(|_| output.to_owned()),
            stages,
        };
        def.check_and_order().map_err(|e| FileError::File {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The pipeline's shape (names and inputs, no jobs loaded), for drawing it.
    pub fn shape(&self) -> PipelineDef {
        PipelineDef {
            name: self.name.clone(),
            output: PathBuf::new(),
            stages: self
                .stages
                .iter()
                .map(|s| StageDef {
                    name: s.name.clone(),
                    component: PathBuf::from(&s.job),
                    component_sha256: String::new(),
                    inputs: s.inputs.iter().map(|i| StageInput::parse(i)).collect(),
                    settings: SubmitSpec::default(),
                    verify_sha256: s.verify_sha256,
                })
                .collect(),
        }
    }
}

impl FileStage {
    /// The stage's settings as `mr-host submit` takes them, checked.
    fn submit_spec(&self, inputs: Vec<String>) -> Result<SubmitSpec, String> {
        let mut value = serde_json::Value::Object(self.settings.clone());
        value["inputs"] = serde_json::json!(inputs);
        value["output"] = serde_json::json!("");
        value["params"] = serde_json::json!(self.params);
        let spec: SubmitSpec = serde_json::from_value(value).map_err(|e| e.to_string())?;
        // What `check` needs set (the pipeline sets them when it plans the stage).
        SubmitSpec {
            inputs: vec!["-".into()],
            output: "-".into(),
            ..spec.clone()
        }
        .check()
        .map_err(|e| e.to_string())?;
        Ok(spec)
    }
}

/// An input spec with its path made absolute against `base`, keeping a format prefix, a
/// SQLite query, a generator or a URL as it is.
fn rebase(base: &Path, spec: &str) -> String {
    if spec.contains("://") || spec.starts_with("random:") || spec.starts_with("range:") {
        return spec.to_owned();
    }
    for prefix in mr_io::PREFIXES {
        if let Some(rest) = spec.strip_prefix(prefix) {
            return format!("{prefix}{}", rebase(base, rest));
        }
    }
    let (path, query) = match spec.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (spec, None),
    };
    let mut out = base.join(path).to_string_lossy().into_owned();
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Stage states (and anything else to show beside each stage, e.g. `done, reused`), by name.
pub type Labels = HashMap<String, String>;

/// The pipeline as text: one line per stage in dependency order, with what it reads and,
/// when `labels` has it, its state.
pub fn text(def: &PipelineDef, labels: &Labels) -> String {
    let width = def.stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = format!("pipeline {} ({} stages)\n", def.name, def.stages.len());
    for stage in &def.stages {
        let readers: Vec<&str> = def
            .stages
            .iter()
            .filter(|s| s.upstream().any(|u| u == stage.name))
            .map(|s| s.name.as_str())
            .collect();
        let inputs: Vec<String> = stage.inputs.iter().map(ToString::to_string).collect();
        out += &format!("  {:width$}  <- {}", stage.name, inputs.join(", "));
        if !readers.is_empty() {
            out += &format!("  -> {}", readers.join(", "));
        }
        if let Some(label) = labels.get(&stage.name) {
            out += &format!("  [{label}]");
        }
        out.push('\n');
    }
    out
}

/// The pipeline as a Graphviz DOT digraph: a box per stage (labelled with its state when
/// `labels` has it), a note per plain input, an edge per dependency.
pub fn dot(def: &PipelineDef, labels: &Labels) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n",
        q(&def.name)
    );
    let mut inputs: Vec<&str> = Vec::new();
    for stage in &def.stages {
        let label = match labels.get(&stage.name) {
            Some(l) => format!("{}\\n{l}", stage.name),
            None => stage.name.clone(),
        };
        out += &format!(
            "  {} [label={}];\n",
            q(&format!("stage:{}", stage.name)),
            q(&label).replace("\\\\n", "\\n")
        );
        for input in &stage.inputs {
            if let StageInput::Spec(spec) = input
                && !inputs.contains(&spec.as_str())
            {
                inputs.push(spec);
                out += &format!(
                    "  {} [shape=note, label={}];\n",
                    q(&format!("input:{spec}")),
                    q(spec)
                );
            }
        }
    }
    for stage in &def.stages {
        for input in &stage.inputs {
            let from = match input {
                StageInput::Spec(spec) => format!("input:{spec}"),
                StageInput::Stage(up) => format!("stage:{up}"),
            };
            out += &format!(
                "  {} -> {};\n",
                q(&from),
                q(&format!("stage:{}", stage.name))
            );
        }
    }
    out + "}\n"
}

#[cfg(test)]
mod tests;
