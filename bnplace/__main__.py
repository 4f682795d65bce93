from bnplace.cli import main

main(prog_name="bnplace")
