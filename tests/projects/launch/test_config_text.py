"""FormatOnceConfig: the Runner's config text, formatted once per content."""
import copy

import mmengine.config.config as config_module
import pytest
from mmengine.config import Config

from projects.launch.config_text import FormatOnceConfig, format_once


@pytest.fixture
def yapf_calls(monkeypatch):
    calls = []
    format_code = config_module.FormatCode

    def counting(text, **kwargs):
        calls.append(text)
        return format_code(text, **kwargs)

    monkeypatch.setattr(config_module, 'FormatCode', counting)
    return calls


def _config():
    return Config(dict(model=dict(type='Toy', depth=18),
                       optim_wrapper=dict(optimizer=dict(lr=0.1))))


def test_same_text_formatted_once(yapf_calls):
    plain = _config()
    want = plain.pretty_text
    assert len(yapf_calls) == 1
    cfg = format_once(_config())
    texts = [cfg.pretty_text, cfg.pretty_text]
    runner_copy = copy.deepcopy(copy.deepcopy(cfg))  # as Runner keeps it
    assert type(runner_copy) is FormatOnceConfig
    texts += [runner_copy.pretty_text, runner_copy.pretty_text]
    assert texts == [want] * 4
    assert len(yapf_calls) == 2  # plain Config: every call formats
    plain.pretty_text
    assert len(yapf_calls) == 3


def test_changed_content_is_formatted_again(yapf_calls):
    """Negative control of the cache: a change shows in the text."""
    cfg = format_once(_config())
    assert 'lr=0.1' in cfg.pretty_text
    cfg.optim_wrapper.optimizer.lr = 0.5
    assert 'lr=0.5' in cfg.pretty_text and 'lr=0.1' not in cfg.pretty_text
    assert len(yapf_calls) == 2
    assert cfg.pretty_text == Config(cfg.to_dict()).pretty_text
