"""Only the listed third-party messages are hidden; every other message still shows."""
from __future__ import annotations

import logging

import pytest

from nni_dynamic_supernet.quiet_logs import install_nni_filters, quiet_third_party_logs


def test_nni_repeated_messages_are_dropped_and_others_kept(caplog: pytest.LogCaptureFixture) -> None:
    install_nni_filters()
    install_nni_filters()  # idempotent: one filter per logger
    logger = logging.getLogger("nni.nas.experiment.config.experiment")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING):
        logger.warning("`training_service` will be ignored for sequential execution engine.")
        logging.getLogger("nni.nas.profiler.pytorch.flops").warning(
            "Parameters and FLOPs of Identity is not counted because it has no children (name: skip).")
        logger.warning("something else went wrong")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["something else went wrong"]


def test_lightning_banners_are_off_unless_verbose() -> None:
    banner = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    quiet_third_party_logs()
    assert not banner.isEnabledFor(logging.INFO) and banner.isEnabledFor(logging.WARNING)
    quiet_third_party_logs(verbose=True)
    assert banner.isEnabledFor(logging.INFO)
    quiet_third_party_logs()
