from certmint.cli import main

raise SystemExit(main())
