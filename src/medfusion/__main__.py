from medfusion.cli.main import main

main()
