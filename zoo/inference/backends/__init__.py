"""One module per runtime, each exposing the same small interface (see :mod:`.base`).

``torch``, ``onnxruntime``, ``openvino`` and ``keras`` are the only places in ``zoo.inference``
that call those frameworks; each is imported only when a model of its kind is loaded.
"""
