from pasar.cli import main

main()
