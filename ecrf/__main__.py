from ecrf.cli import main

main(prog_name="ecrf")
