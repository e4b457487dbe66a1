"""Supernet training: the step (:mod:`.engine`) and the components it is built from (:mod:`.build`).

One folder per component kind of the step: :mod:`.paths` (which subnets a step trains),
:mod:`.lr` (their learning rate), :mod:`.optimizer_state` (their momentum), :mod:`.updates`
(how their losses become a weight update) and :mod:`.partition` (one supernet or a tree of
sub-supernets). ``docs/architecture.rst`` draws the layout and the flow.
"""
