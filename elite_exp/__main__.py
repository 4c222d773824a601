from elite_exp.runner import main

main()
