from ecrf.cli import main

main()
