from nnfast.cli import main

raise SystemExit(main())
