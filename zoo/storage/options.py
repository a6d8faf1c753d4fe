"""Storage options: the keyword arguments each fsspec file system is built with (credentials,
endpoint, region), and how they reach the executors.

On the driver they come from two places, Spark's first (as hadoop-aws reads them):
    Spark (the Hadoop configuration)            environment variable
    spark.hadoop.fs.s3a.access.key              AWS_ACCESS_KEY_ID
    spark.hadoop.fs.s3a.secret.key              AWS_SECRET_ACCESS_KEY
    spark.hadoop.fs.s3a.session.token           AWS_SESSION_TOKEN
    spark.hadoop.fs.s3a.endpoint                AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL
    spark.hadoop.fs.s3a.endpoint.region         AWS_REGION, AWS_DEFAULT_REGION
    spark.hadoop.fs.s3a.path.style.access       (path-style addressing, for MinIO and the like)
    spark.hadoop.fs.s3a.connection.ssl.enabled  (http:// for an endpoint given without a scheme)
    spark.hadoop.fs.s3a.aws.credentials.provider = ...AnonymousAWSCredentialsProvider (public buckets)
When neither gives keys, s3fs falls back to botocore's own chain (~/.aws, instance profiles).

Executors' Python workers have no SparkContext and not the driver's environment, so the driver
ships what it resolved: `storage_options()` returns a plain, picklable dict ``{protocol: kwargs}``
that the engine puts in its task payload, and the task calls `install_storage_options(options)`
before it touches storage. Installed options win over anything the worker would find itself.
"""

from __future__ import annotations

import copy
import os

from zoo.storage.spark_conf import hadoop_setting

#: Where S3 credentials can be given, as error messages list them.
S3_CREDENTIAL_SETTINGS = (
    "the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for "
    "temporary credentials), or the Spark settings spark.hadoop.fs.s3a.access.key and "
    "spark.hadoop.fs.s3a.secret.key (and spark.hadoop.fs.s3a.session.token), or ~/.aws/credentials"
)
#: Where the S3 endpoint and region are set.
S3_ENDPOINT_SETTINGS = ("AWS_ENDPOINT_URL / spark.hadoop.fs.s3a.endpoint (and AWS_DEFAULT_REGION / "
                        "spark.hadoop.fs.s3a.endpoint.region)")
#: Options every S3 file system gets: listings are never cached, since other processes write too.
S3_BASE_OPTIONS = {"use_listings_cache": False}

_installed: dict | None = None


def _first(*values):
    return next((v for v in values if v), None)


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def s3_options() -> dict:
    """The s3fs keyword arguments this process finds (Spark's s3a settings, then the AWS
    environment variables), without the installed ones."""
    options = dict(S3_BASE_OPTIONS)
    spark_key = hadoop_setting("fs.s3a.access.key")
    if spark_key:
        key, secret, token = spark_key, hadoop_setting("fs.s3a.secret.key"), hadoop_setting("fs.s3a.session.token")
    else:
        env = os.environ
        key, secret, token = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"), env.get("AWS_SESSION_TOKEN")
    options.update({k: v for k, v in (("key", key), ("secret", secret), ("token", token)) if v})
    provider = hadoop_setting("fs.s3a.aws.credentials.provider") or ""
    if provider.strip().endswith("AnonymousAWSCredentialsProvider"):
        options["anon"] = True
    endpoint = _first(hadoop_setting("fs.s3a.endpoint"), os.environ.get("AWS_ENDPOINT_URL_S3"),
                      os.environ.get("AWS_ENDPOINT_URL"))
    if endpoint:
        if "://" not in endpoint:
            ssl = hadoop_setting("fs.s3a.connection.ssl.enabled")
            endpoint = ("http://" if ssl is not None and not _true(ssl) else "https://") + endpoint
        options["endpoint_url"] = endpoint
    region = _first(hadoop_setting("fs.s3a.endpoint.region"), os.environ.get("AWS_REGION"),
                    os.environ.get("AWS_DEFAULT_REGION"))
    if region:
        options["client_kwargs"] = {"region_name": region}
    if _true(hadoop_setting("fs.s3a.path.style.access")):
        options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    return options


def storage_options() -> dict:
    """The storage options to ship to executors: ``{"s3": {...s3fs kwargs...}}``, a plain dict.

    Driver side; it includes secrets when they are configured, so ship it only inside the
    application (a broadcast or a task closure), never log it. Where options were installed
    (an executor), those are returned.
    """
    if _installed is not None:
        return copy.deepcopy(_installed)
    return {"s3": s3_options()}


def install_storage_options(options: dict | None) -> None:
    """Use `options` (from the driver's `storage_options()`) for every file system this process
    opens from now on. Executor side: call it first in a task; None leaves things as they are."""
    global _installed
    if options is None:
        return
    if not isinstance(options, dict):
        raise TypeError(f"Expected the storage options as a dict {{protocol: kwargs}} from "
                        f"zoo.storage.storage_options(). Received: {type(options).__name__}.")
    _installed = copy.deepcopy(options)


def options_for(protocol: str) -> dict:
    """The keyword arguments to build the fsspec file system of `protocol` with."""
    if _installed is not None:
        return copy.deepcopy(_installed.get(protocol, {}))
    return s3_options() if protocol == "s3" else {}
