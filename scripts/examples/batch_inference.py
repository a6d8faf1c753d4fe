"""spark-submit example: apply a saved NNClassifierModel to a Parquet data set, write the predictions.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --master local[2] \
        scripts/examples/batch_inference.py --model /tmp/zoo-model --input /tmp/zoo-test.parquet \
        --output /tmp/zoo-predictions.parquet [--backend openvino]

The model is loaded on the driver and broadcast once; each Python worker runs it over its
partitions (`NNModel.transform`). The output keeps every input column and adds `prediction`
(double) and `probability` (vector); when the input has a `label` column the accuracy is printed.
"""

import argparse
import logging

from pyspark.sql import functions as F

from zoo import init_spark
from zoo.inference.config import FRAMEWORK_BACKENDS
from zoo.nnframes import NNClassifierModel


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="folder of a saved NNClassifierModel")
    parser.add_argument("--input", required=True, help="Parquet with the model's feature column(s)")
    parser.add_argument("--output", required=True, help="Parquet to write the predictions to")
    parser.add_argument("--backend", default=None, choices=sorted({b for bs in FRAMEWORK_BACKENDS.values() for b in bs}),
                        help="default: the model's own framework (torch or keras)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    spark = init_spark(app_name="zoo-batch-inference")
    model = NNClassifierModel.load(args.model).setBatchSize(args.batch_size)
    if args.backend is not None:
        model.setBackend(args.backend)
    predictions = model.transform(spark.read.parquet(args.input))
    predictions.write.mode("overwrite").parquet(args.output)
    written = spark.read.parquet(args.output)
    print(f"wrote {written.count()} predictions to {args.output}")
    if "label" in written.columns:
        accuracy = written.select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]
        print(f"accuracy {accuracy:.4f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
