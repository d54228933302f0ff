"""The file torchrun runs in every worker when it needs a script path rather than a module (Spark's
TorchDistributor takes a path): the ordinary command line, with absolute imports."""

from warmstart.cli import main

if __name__ == "__main__":
    main()
