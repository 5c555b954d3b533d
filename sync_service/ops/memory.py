"""Peak memory of this process (Linux ``VmHWM``): its own, not an ancestor's.

Each run record keeps the process's peak when the job ended (``memory.peak_mib``), so the on-call
person sees a job whose memory grows with the org, and the benchmarks read the same figure.
A light module on purpose: importing it adds nothing to the peak it measures.
"""

from __future__ import annotations

import resource


def reset_peak_rss() -> bool:
    """Start a new peak for :func:`rss_mib` from the RSS now (Linux; False where it cannot).

    Writing ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM``: each phase of a benchmark
    then reports its own peak, not an earlier phase's.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def rss_mib() -> float:
    """The peak RSS of this process in MiB.

    Linux's ``VmHWM`` when there is one: ``ru_maxrss`` survives ``exec``, so a benchmark's
    child process would report its parent's peak (the seeding's) as its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
