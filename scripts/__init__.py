"""Entry points of adderhw: the ``adderhw`` command, ``doctor``, the end-to-end flow.

The shell flows (``setup.sh``) and benchmarks (``bench_*.py``) live beside this
package as plain scripts.
"""

__all__: list[str] = []
