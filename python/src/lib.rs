//! `ladder._ladder`: the crate's training, prediction, export and robustness for Python. The
//! estimators and their conveniences live in `python/ladder/__init__.py`; this module takes
//! contiguous numpy arrays (uint8 or float32) and JSON settings, releases the GIL while it
//! computes, and turns the crate's errors into Python exceptions with the CLI's messages.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use numpy::{
    PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyPermissionError,
    PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use serde_json::{Map, Value};

use ladder::attack::{AttackKind, AttackSettings, Norm};
use ladder::data::arrays::{PixelSlice, dataset_of, known_labels};
use ladder::data::{DataError, DataRequest, Dataset};
use ladder::device::{DeviceKind, training_device};
use ladder::experiment::fit::{FitData, fit as fit_arrays};
use ladder::experiment::robustness::{RobustnessOptions, measure_model};
use ladder::experiment::run::{
    CONFIG_FILE, INTERRUPTED, METRICS_FILE, RunMethod, SUMMARY_FILE, read_config, read_json,
};
use ladder::experiment::trained::TrainedModel;
use ladder::experiment::{RunOptions, export, train_run, train_seeds};
use ladder::train::config::Method;
use ladder::{LadderError, choice};

/// The Python exception of a crate error, with the message the CLI prints after `error: `:
/// files that cannot be read or written raise `OSError` (its subclasses where they fit), a
/// stopped run `KeyboardInterrupt`, a diverged one `RuntimeError`, everything else (shapes,
/// labels, settings, malformed files) `ValueError`.
fn py_err(e: LadderError) -> PyErr {
    let msg = message(&e);
    let io_kind = match &e {
        LadderError::Io { source, .. } | LadderError::Data(DataError::Io { source, .. }) => {
            Some(source.kind())
        }
        _ => None,
    };
    match (e, io_kind) {
        (_, Some(std::io::ErrorKind::NotFound)) => PyFileNotFoundError::new_err(msg),
        (_, Some(std::io::ErrorKind::PermissionDenied)) => PyPermissionError::new_err(msg),
        (_, Some(_)) => PyOSError::new_err(msg),
        (LadderError::RunDir { .. }, _) if msg.contains("already holds") => {
            PyFileExistsError::new_err(msg)
        }
        (LadderError::RunDir { .. } | LadderError::Checkpoint { .. }, _) => PyOSError::new_err(msg),
        (LadderError::Interrupted(_), _) => PyKeyboardInterrupt::new_err(msg),
        (LadderError::Diverged { .. }, _) => PyRuntimeError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// The error and its causes, as the CLI's `describe` joins them (a cause already at the end
/// of the text is not repeated).
fn message(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.ends_with(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

/// The threads the crate computes on: a pool as the CLI's, whose 64 MiB stacks the deep
/// autodiff graphs of the larger networks need (a Python thread has 8 MiB).
fn pool() -> PyResult<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Result<rayon::ThreadPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .stack_size(64 << 20)
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| PyRuntimeError::new_err(format!("cannot start the thread pool: {e}")))
}

/// Runs `work` on the pool with the GIL released and Ctrl-C caught, after checking the kernel
/// build `LADDER_ISA` and the products `LADDER_NUMERICS` ask for (as the CLI does before any
/// work).
fn compute<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, LadderError> + Send,
) -> PyResult<T> {
    ladder::fused::isa::check_environment().map_err(setting)?;
    let pool = pool()?;
    py.detach(|| {
        let _ctrl_c = CtrlC::catch();
        pool.install(work)
    })
    .map_err(py_err)
}

fn data_err(e: DataError) -> PyErr {
    py_err(LadderError::Data(e))
}

fn setting(msg: String) -> PyErr {
    py_err(LadderError::Setting(msg))
}

/// Ctrl-C while the crate computes: the run's interruption flag is set (the loop stops at the
/// next step, a run with a directory saving its state first) instead of Python's handler,
/// which cannot run until the call returns. The handler before is restored on drop.
struct CtrlC {
    previous: libc::sigaction,
}

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

impl CtrlC {
    fn catch() -> CtrlC {
        INTERRUPTED.store(false, Ordering::SeqCst);
        // SAFETY: sigaction with a handler that only stores to an atomic (async-signal-safe);
        // both structs are fully initialised (zeroed, then the fields set).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGINT, &action, &mut previous);
            CtrlC { previous }
        }
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        // SAFETY: restores the action saved in `catch`.
        unsafe {
            libc::sigaction(libc::SIGINT, &self.previous, std::ptr::null_mut());
        }
        INTERRUPTED.store(false, Ordering::SeqCst);
    }
}

/// The pixels of a contiguous uint8 or float32 numpy array, with its shape.
enum Owned<'py> {
    Bytes(PyReadonlyArrayDyn<'py, u8>),
    Floats(PyReadonlyArrayDyn<'py, f32>),
}

impl<'py> Owned<'py> {
    fn of(x: &Bound<'py, PyAny>, name: &str) -> PyResult<Self> {
        if let Ok(a) = x.extract::<PyReadonlyArrayDyn<'py, u8>>() {
            return Ok(Owned::Bytes(a));
        }
        if let Ok(a) = x.extract::<PyReadonlyArrayDyn<'py, f32>>() {
            return Ok(Owned::Floats(a));
        }
        Err(PyTypeError::new_err(format!(
            "{name} must be a numpy array of uint8 (pixels 0-255, scaled by 1/255) or float32"
        )))
    }

    fn dims(&self) -> Vec<usize> {
        match self {
            Owned::Bytes(a) => a.shape().to_vec(),
            Owned::Floats(a) => a.shape().to_vec(),
        }
    }

    /// The data set of these pixels with `labels` (0 for each example when `None`).
    fn dataset(&self, labels: Option<Vec<u32>>, classes: usize, name: &str) -> PyResult<Dataset> {
        let dims = self.dims();
        let labels = labels.unwrap_or_else(|| vec![0; dims.first().copied().unwrap_or(0)]);
        let contiguous = |_| PyValueError::new_err(format!("{name} must be C-contiguous"));
        let pixels = match self {
            Owned::Bytes(a) => PixelSlice::Bytes(a.as_slice().map_err(contiguous)?),
            Owned::Floats(a) => PixelSlice::Floats(a.as_slice().map_err(contiguous)?),
        };
        dataset_of(pixels, &dims, labels, classes, name).map_err(data_err)
    }
}

/// Labels that must all be known (a test set's), checked against `classes`.
fn class_labels(y: &PyReadonlyArray1<'_, i64>, classes: usize, name: &str) -> PyResult<Vec<u32>> {
    let (labels, known) = known_labels(y.as_slice()?, classes, name).map_err(data_err)?;
    if known.len() < labels.len() {
        let i = (0..labels.len()).find(|i| known.binary_search(i).is_err());
        return Err(PyValueError::new_err(format!(
            "{name}[{}] = -1: every example here needs its label",
            i.unwrap_or(0)
        )));
    }
    Ok(labels)
}

fn json_map(settings: &str) -> PyResult<Map<String, Value>> {
    match serde_json::from_str(settings) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(PyValueError::new_err("settings must be a JSON object")),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serialisable")
}

fn parse_choice<E: clap::ValueEnum + Clone>(s: &str, what: &str) -> PyResult<E> {
    choice::parse(s, what).map_err(setting)
}

fn cpu_or(device: &str) -> PyResult<burn::prelude::Device> {
    training_device(parse_choice::<DeviceKind>(device, "device")?).map_err(py_err)
}

/// A trained classifier of any family, ready to predict.
#[pyclass(name = "Model", module = "ladder._ladder", frozen)]
struct PyModel {
    inner: TrainedModel,
}

#[pymethods]
impl PyModel {
    /// Class probabilities, `(n, num_classes)` float32.
    fn probabilities<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ds = Owned::of(x, "X")?.dataset(None, self.inner.num_classes(), "X")?;
        let (n, k) = (ds.len(), self.inner.num_classes());
        let rows = compute(py, || self.inner.probabilities(ds))?;
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        Ok(PyArray1::from_vec(py, flat).reshape([n, k])?.into_any())
    }

    /// Writes the network as a `ladder-export/2` safetensors file.
    fn export(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        compute(py, || export::export(&self.inner)?.save(&path))
    }

    #[getter]
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    #[getter]
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }

    /// `ladder`, `plain` or `semantic`.
    #[getter]
    fn family(&self) -> &'static str {
        match self.inner {
            TrainedModel::Ladder(..) => "ladder",
            TrainedModel::Plain(..) => "plain",
            TrainedModel::Semantic(..) => "semantic",
        }
    }
}

/// Calls a Python callable from the training loop; its first error stops the loop and is
/// raised when the call returns.
struct Callback {
    f: Option<Py<PyAny>>,
    error: Option<PyErr>,
}

impl Callback {
    fn call<A>(&mut self, args: A)
    where
        A: for<'py> IntoPyObject<
                'py,
                Target = pyo3::types::PyTuple,
                Output = Bound<'py, pyo3::types::PyTuple>,
            >,
    {
        let (Some(f), None) = (&self.f, &self.error) else {
            return;
        };
        let called = Python::attach(|py| {
            let args = args.into_pyobject(py).map_err(Into::into)?;
            f.call1(py, args).map(drop)
        });
        if let Err(e) = called {
            self.error = Some(e);
            INTERRUPTED.store(true, Ordering::SeqCst);
        }
    }
}

/// Trains the Ladder of `preset` + `method` + `settings` on `x` (labels `y`, `-1` for
/// unlabelled examples) and `x_unlabelled`; returns the model and the JSON of the resolved
/// configuration, the summary and every epoch's metrics.
#[pyfunction]
#[pyo3(signature = (settings, preset, method, x, y, x_unlabelled=None, eval_x=None, eval_y=None, device="cpu", on_step=None, on_epoch=None))]
#[allow(clippy::too_many_arguments)]
fn fit<'py>(
    py: Python<'py>,
    settings: &str,
    preset: Option<&str>,
    method: &str,
    x: &Bound<'py, PyAny>,
    y: PyReadonlyArray1<'py, i64>,
    x_unlabelled: Option<&Bound<'py, PyAny>>,
    eval_x: Option<&Bound<'py, PyAny>>,
    eval_y: Option<PyReadonlyArray1<'py, i64>>,
    device: &str,
    on_step: Option<Py<PyAny>>,
    on_epoch: Option<Py<PyAny>>,
) -> PyResult<(PyModel, String, String, String)> {
    let method = parse_choice::<Method>(method, "method")?;
    let config = ladder::train::resolve::ladder_config(preset, method, &json_map(settings)?)
        .map_err(py_err)?;
    let device = cpu_or(device)?;
    let classes = config.num_classes;
    let (labels, known) = known_labels(y.as_slice()?, classes, "y").map_err(data_err)?;
    let n = labels.len();
    let mut train = Owned::of(x, "X")?.dataset(Some(labels), classes, "X")?;
    let extra = match x_unlabelled {
        Some(xu) => Some(Owned::of(xu, "X_unlabelled")?.dataset(None, classes, "X_unlabelled")?),
        None => None,
    };
    let partial = known.len() < n || extra.is_some();
    if let Some(extra) = extra {
        if extra.image_shape != train.image_shape {
            return Err(PyValueError::new_err(format!(
                "X_unlabelled's examples have shape {:?} but X's have {:?}",
                extra.image_shape, train.image_shape
            )));
        }
        train.images = ladder::data::Pixels::joined(&[&train.images, &extra.images]);
        train.labels.extend_from_slice(&extra.labels);
        train.n += extra.n;
    }
    let eval = match (eval_x, eval_y) {
        (Some(ex), Some(ey)) => {
            let ey = class_labels(&ey, classes, "eval_set y")?;
            let ds = Owned::of(ex, "eval_set X")?.dataset(Some(ey), classes, "eval_set X")?;
            if ds.image_shape != train.image_shape {
                return Err(PyValueError::new_err(format!(
                    "the eval_set's examples have shape {:?} but X's have {:?}",
                    ds.image_shape, train.image_shape
                )));
            }
            Some(ds)
        }
        (None, None) => None,
        _ => return Err(PyValueError::new_err("eval_set needs both X and y")),
    };
    let data = FitData {
        train,
        known: partial.then_some(known),
        eval,
    };
    let mut steps = Callback {
        f: on_step,
        error: None,
    };
    let mut epochs = Callback {
        f: on_epoch,
        error: None,
    };
    let outcome = compute(py, || {
        let mut watch = |s: &ladder::train::epochs::StepDone| {
            steps.call((s.epoch, s.step, s.steps, s.message.clone()))
        };
        let mut report = |line: &str| epochs.call((line.to_string(),));
        fit_arrays(&config, data, &device, &mut watch, &mut report)
    });
    // A callback's own exception is what stopped the fit.
    if let Some(e) = steps.error.or(epochs.error) {
        return Err(e);
    }
    let outcome = outcome?;
    Ok((
        PyModel {
            inner: outcome.model,
        },
        to_json(&config),
        to_json(&outcome.summary),
        to_json(&outcome.epochs),
    ))
}

/// `ladder train`: the run (or one run per seed of `seeds`) of `preset` + `method` +
/// `settings` on the data at `data` (the embedded MNIST-10k when `None`), in `out`; returns
/// the summary's JSON.
#[pyfunction]
#[pyo3(signature = (settings, preset, method, out, data=None, seeds=None, force=false, resume=false, quiet=true, device="cpu"))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    settings: &str,
    preset: Option<String>,
    method: &str,
    out: PathBuf,
    data: Option<PathBuf>,
    seeds: Option<Vec<u64>>,
    force: bool,
    resume: bool,
    quiet: bool,
    device: &str,
) -> PyResult<String> {
    let method = parse_choice::<Method>(method, "method")?;
    let config =
        ladder::train::resolve::ladder_config(preset.as_deref(), method, &json_map(settings)?)
            .map_err(py_err)?;
    let opts = RunOptions {
        force,
        resume,
        quiet,
        device: cpu_or(device)?,
        preset,
        checkpoint_every: None,
    };
    let request = DataRequest {
        path: data,
        ..DataRequest::default()
    };
    compute(py, || {
        let data = request.source()?.load(config.num_classes)?;
        match &seeds {
            Some(seeds) => train_seeds(&config, seeds, &data, &out, &opts).map(|s| to_json(&s)),
            None => train_run(&config, data, Some(&out), &opts).map(|s| to_json(&s)),
        }
    })
}

/// The trained network of an exported file or a finished run directory (of any method).
#[pyfunction]
#[pyo3(signature = (path, device="cpu"))]
fn load(py: Python<'_>, path: PathBuf, device: &str) -> PyResult<PyModel> {
    let device = cpu_or(device)?;
    let inner = compute(py, || {
        export::load_for_new_inputs(&path, &DataRequest::default(), &device)
    })?;
    Ok(PyModel { inner })
}

/// The JSON of a run directory's method, configuration, summary (`null` while unfinished)
/// and per-epoch metrics.
#[pyfunction]
fn read_run(dir: PathBuf) -> PyResult<String> {
    let method = RunMethod::of_dir(&dir).map_err(py_err)?.ok_or_else(|| {
        py_err(LadderError::RunDir {
            path: dir.clone(),
            reason: format!("has no {CONFIG_FILE}: not a run directory"),
        })
    })?;
    let config: Value = read_config(&dir, method).map_err(py_err)?;
    let summary_path = dir.join(SUMMARY_FILE);
    let summary: Value = match summary_path.exists() {
        true => read_json(&summary_path).map_err(py_err)?,
        false => Value::Null,
    };
    let epochs = read_metrics(&dir.join(METRICS_FILE))?;
    let name = match method {
        RunMethod::Ladder => "ladder",
        RunMethod::Plain => "plain",
        RunMethod::Semantic => "semantic",
    };
    Ok(to_json(&serde_json::json!({
        "method": name,
        "config": config,
        "summary": summary,
        "epochs": epochs,
    })))
}

fn read_metrics(path: &Path) -> PyResult<Vec<Value>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| py_err(LadderError::io(path, e)))?;
    text.lines()
        .map(|line| {
            serde_json::from_str(line).map_err(|e| {
                py_err(LadderError::Format {
                    path: path.into(),
                    reason: e.to_string(),
                })
            })
        })
        .collect()
}

/// The thesis's perturbed test sets and the attacks on `model`, as the JSON of a list of
/// rows (`ladder robustness`'s two CSV tables, unrounded).
#[pyfunction]
#[pyo3(signature = (model, x, y, attacks, epsilons, norm, fgsm_epsilons, sigmas, examples=None, seed=1, pgd_steps=40, pgd_restarts=1, apgd_steps=100, square_queries=1000))]
#[allow(clippy::too_many_arguments)]
fn robustness<'py>(
    py: Python<'py>,
    model: &PyModel,
    x: &Bound<'py, PyAny>,
    y: PyReadonlyArray1<'py, i64>,
    attacks: Vec<String>,
    epsilons: Vec<f64>,
    norm: &str,
    fgsm_epsilons: Vec<f64>,
    sigmas: Vec<f64>,
    examples: Option<usize>,
    seed: u64,
    pgd_steps: usize,
    pgd_restarts: usize,
    apgd_steps: usize,
    square_queries: usize,
) -> PyResult<String> {
    let classes = model.inner.num_classes();
    let labels = class_labels(&y, classes, "y")?;
    let test = Owned::of(x, "X")?.dataset(Some(labels), classes, "X")?;
    let attacks = attacks
        .iter()
        .map(|a| parse_choice::<AttackKind>(a, "attack"))
        .collect::<PyResult<Vec<_>>>()?;
    let opts = RobustnessOptions {
        epsilons: fgsm_epsilons,
        sigmas,
        seed,
        attacks,
        norm: parse_choice::<Norm>(norm, "norm")?,
        attack_epsilons: epsilons,
        attack_settings: AttackSettings {
            pgd_steps,
            pgd_restarts,
            apgd_steps,
            square_queries,
            seed,
            ..AttackSettings::default()
        },
        attack_examples: examples,
        force: false,
    };
    compute(py, || {
        measure_model(&model.inner, test, &opts, &mut |_| {}).map(|rows| to_json(&rows))
    })
}

/// The embedded MNIST-10k: `(X_train, y_train, X_test, y_test)`, images `(n, 28, 28)` float32
/// in `[0, 1]` exactly as `ladder train` reads them, labels int64.
#[pyfunction]
fn mnist_10k(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyTuple>> {
    let data = ladder::data::load_embedded(10).map_err(data_err)?;
    let images = |ds: &Dataset| -> PyResult<Bound<'_, PyAny>> {
        let mut shape = vec![ds.len()];
        shape.extend(&ds.image_shape);
        Ok(PyArray1::from_vec(py, ds.images.all().into_owned())
            .reshape(shape)?
            .into_any())
    };
    let labels = |ds: &Dataset| {
        let v: Vec<i64> = ds.labels.iter().map(|&l| i64::from(l)).collect();
        PyArray1::from_vec(py, v).into_any()
    };
    pyo3::types::PyTuple::new(
        py,
        [
            images(&data.train)?,
            labels(&data.train),
            images(&data.test)?,
            labels(&data.test),
        ],
    )
}

/// The names of the presets, in the table's order.
#[pyfunction]
fn presets() -> Vec<&'static str> {
    ladder::train::preset_names().collect()
}

/// The methods `method=` takes.
#[pyfunction]
fn methods() -> Vec<String> {
    choice::all::<Method>().iter().map(choice::name).collect()
}

/// The JSON of a preset's configuration (`None`: the defaults) trained by `method`, with
/// `settings`, checked.
#[pyfunction]
#[pyo3(signature = (settings, preset=None, method="ladder"))]
fn resolve_config(settings: &str, preset: Option<&str>, method: &str) -> PyResult<String> {
    let method = parse_choice::<Method>(method, "method")?;
    ladder::train::resolve::ladder_config(preset, method, &json_map(settings)?)
        .map(|c| to_json(&c))
        .map_err(py_err)
}

#[pymodule]
fn _ladder(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    for f in [
        wrap_pyfunction!(fit, m)?,
        wrap_pyfunction!(train, m)?,
        wrap_pyfunction!(load, m)?,
        wrap_pyfunction!(read_run, m)?,
        wrap_pyfunction!(robustness, m)?,
        wrap_pyfunction!(mnist_10k, m)?,
        wrap_pyfunction!(presets, m)?,
        wrap_pyfunction!(methods, m)?,
        wrap_pyfunction!(resolve_config, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
