from . import main

raise SystemExit(main(prog="python -m qbench_ext.bench"))
