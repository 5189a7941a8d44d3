from fracdata.cli import main

raise SystemExit(main())
