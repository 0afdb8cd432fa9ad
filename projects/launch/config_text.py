"""The config text a Runner formats, formatted once per content.

mmengine's ``Runner`` asks its config for ``pretty_text`` five times in a
training run (the log header, ``dump_config``, ``RuntimeInfoHook`` for the
message hub, and the meta of every checkpoint), and each call runs yapf over
the whole text: about 1.3 s for a Soft Teacher config (44k characters) on a
2-core CPU, 0.1-0.2 s for the others. :class:`FormatOnceConfig` is
mmengine's ``Config`` whose ``pretty_text`` is computed again only when the
config's content changed; the text is the same.
"""
from mmengine.config import Config


class FormatOnceConfig(Config):
    """``Config`` with ``pretty_text`` cached by the content it formats."""

    @property
    def pretty_text(self) -> str:
        key = repr(self._cfg_dict)
        cached = self.__dict__.get('_pretty_text_cache')
        if cached is None or cached[0] != key:
            cached = (key, Config.pretty_text.fget(self))
            # Config.__setattr__ writes into the config's content
            object.__setattr__(self, '_pretty_text_cache', cached)
        return cached[1]


def format_once(cfg: Config) -> Config:
    """``cfg`` as a :class:`FormatOnceConfig` (sharing its content; the
    Runner deep-copies it, keeping the class)."""
    if isinstance(cfg, FormatOnceConfig):
        return cfg
    out = FormatOnceConfig.__new__(FormatOnceConfig)
    out.__dict__.update(cfg.__dict__)
    out.__dict__.pop('_pretty_text_cache', None)
    return out
