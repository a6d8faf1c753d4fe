"""Zoo's errors: what a failed fit tells its caller (and that it survives pickling), and that every
exception lives in an errors module and subclasses a builtin users catch."""

import ast
import builtins
import importlib
import pathlib
import pickle

from zoo.errors import WorkerError

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}


def test_a_failed_spark_job_says_it_is_not_a_workers_failure():
    error = WorkerError([(None, "Py4JJavaError: Job aborted due to stage failure")])
    text = str(error)
    assert text.startswith("The Spark job of the training failed before any worker reported an error")
    assert "--- the Spark job, seen from the driver ---\nPy4JJavaError: Job aborted" in text
    assert "worker -1" not in text and "worker None" not in text


def test_worker_failures_name_each_rank_and_pickle():
    error = WorkerError([(0, "Traceback ...\nValueError: bad"), (1, "Traceback ...\nKeyError: 'x'")], "validation")
    text = str(error)
    assert text.startswith("2 worker(s) failed during validation.")
    assert "--- worker 0 ---\nTraceback ...\nValueError: bad" in text and "--- worker 1 ---" in text
    copy = pickle.loads(pickle.dumps(error))
    assert copy.failures == error.failures and str(copy) == text


def test_a_failed_flink_job_says_it_failed_on_the_driver_side():
    error = WorkerError([(None, "JobExecutionException: Job execution failed.")], job="Flink")
    text = str(error)
    assert text.startswith("The Flink job of the training failed before any worker reported an error")
    assert "--- the Flink job, seen from the driver ---\nJobExecutionException: Job execution failed." in text
    assert "worker -1" not in text and "worker None" not in text and "Spark" not in text
    copy = pickle.loads(pickle.dumps(error))
    assert copy.job == "Flink" and str(copy) == text


def _errors_modules():
    """Every errors module of the tree (zoo/errors.py and each package's errors.py), imported."""
    names = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts) for path in (ROOT / "zoo").rglob("errors.py"))
    return [importlib.import_module(name) for name in names]


def test_every_error_subclasses_a_builtin_users_catch():
    modules = _errors_modules()
    assert {"zoo.errors", "zoo.inference.errors", "zoo.serving.errors"} <= {m.__name__ for m in modules}
    checked = []
    for module in modules:
        for name, cls in vars(module).items():
            if isinstance(cls, type) and issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                builtin = [base for base in cls.__mro__ if base.__module__ == "builtins"
                           and base not in (Exception, BaseException, object)]
                assert builtin, f"{module.__name__}.{name} subclasses no builtin but Exception"
                assert cls.__doc__, f"{module.__name__}.{name} has no docstring"
                checked.append(name)
    assert {"WorkerError", "UsageError", "PublishError", "InferenceArgumentError", "UnsupportedModelError",
            "HTTPError"} <= set(checked)


def _exception_classes_outside_errors_modules() -> list[str]:
    found = []
    for path in sorted((ROOT / "zoo").rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [getattr(base, "id", getattr(base, "attr", "")) for base in node.bases]
                if any(base.endswith(("Error", "Exception", "Timeout")) or base in BUILTIN_EXCEPTIONS for base in bases):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return found


def test_exceptions_are_defined_only_in_errors_modules():
    assert _exception_classes_outside_errors_modules() == []


def test_inference_raises_its_own_errors_not_bare_builtins():
    bare = []
    for path in sorted((ROOT / "zoo" / "inference").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                    and getattr(node.exc.func, "id", None) in ("ValueError", "TypeError"):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == []
