"""The shipped model's world: procedural scenes and vocabulary, the architecture, training, the judge, the model card.

Nothing in the runtime (:mod:`pipeline`'s other modules) imports this package;
the experiments layer wires its pieces (the judge, the vocabulary embedder) in
as defaults.

- :mod:`pipeline.embedded.scenes`: deterministic procedural scenes, captions and the vocabulary.
- :mod:`pipeline.embedded.model`: the architecture of ``distdiff-tiny-sd`` (and tiny test configs).
- :mod:`pipeline.embedded.training`: ``python -m pipeline.embedded.training`` trains the shipped model.
- :mod:`pipeline.embedded.classifier`: the adherence judge; :mod:`pipeline.embedded.judging`: it as a
  :class:`pipeline.judge.Judge` (:func:`~pipeline.embedded.judging.default_judge`).
- :mod:`pipeline.embedded.vocabulary`: the vocabulary embedder and centring prompts for grouping.
- :mod:`pipeline.embedded.model_card`, :mod:`pipeline.embedded.measure`: measurements behind the model card.
"""
