"""Run a gpt_nb console script by name, exactly as its installed wrapper does (`sys.exit(main())`).

    python tests/_child.py [--prelude NAME] SCRIPT [ARGS...]

A prelude prepares a hostile condition in the child before the script runs:
  kill-mid-save   the first checkpoint save writes part of its bytes, then the process kills itself with SIGKILL
  slow-import     `import torch` first prints 'importing torch' on stdout, then waits up to a minute: a signal sent
                  when the line appears arrives while the tool is certainly still importing its libraries
"""

import faulthandler, importlib.metadata, os, signal, sys, time


def kill_mid_save():
    import torch

    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        if hasattr(f, 'truncate'):  # leave half a file behind, as a kill in the middle of writing would
            f.flush()
            f.truncate(max(1, f.tell() // 2))
            f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = save


class SlowTorchImport:
    "A finder that holds the first `import torch` for up to a minute, after saying so on stdout."

    def find_spec(self, name, path=None, target=None):
        if name == 'torch':
            sys.meta_path.remove(self)
            print('importing torch', flush=True)
            time.sleep(60)
        return None  # the ordinary finders import it


def slow_import():
    sys.meta_path.insert(0, SlowTorchImport())


PRELUDES = {'kill-mid-save': kill_mid_save, 'slow-import': slow_import}

if __name__ == '__main__':
    faulthandler.register(
        signal.SIGUSR1, all_threads=True
    )  # a probe that times out asks for the stacks before it kills
    # Ctrl-C as in a terminal: a suite started in the background by a shell without job control (a script's
    # `make test &`) runs with SIGINT ignored, as do its children, and Python then installs no KeyboardInterrupt handler
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import resource  # not the address-space cap the test process may have had while it started this one

    resource.setrlimit(resource.RLIMIT_AS, (resource.getrlimit(resource.RLIMIT_AS)[1],) * 2)
    args = sys.argv[1:]
    if args[0] == '--prelude':
        PRELUDES[args[1]]()
        args = args[2:]
    name, argv = args[0], args[1:]
    main = next(ep for ep in importlib.metadata.entry_points(group='console_scripts') if ep.name == name).load()
    sys.argv = [name, *argv]
    sys.exit(main())
