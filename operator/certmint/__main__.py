from certmint.cli.main import main

raise SystemExit(main())
