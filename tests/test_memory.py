"""Training memory grows with the series length, not with length times window."""

import subprocess
import sys
import textwrap

# Trains one epoch on 2,000,000 values with windows of 200 in a fresh process
# and prints the growth of its peak resident memory in MiB. A materialised
# window matrix alone would take 2e6 * 201 * 4 bytes, about 1,533 MiB.
SCRIPT = textwrap.dedent(
    """
    import resource
    import numpy as np
    from seqcast.forecasting import Forecaster
    from seqcast.models import DenseConfig
    from seqcast.training import TrainConfig

    values = np.sin(np.arange(2_000_000, dtype=np.float32) / 50)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    training = TrainConfig(epochs=1, batch_size=4096, shuffle_buffer=1)
    Forecaster(DenseConfig(window_size=200), training=training).fit(values, 0.9)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024)
    """
)


def test_long_series_trains_without_window_matrix():
    output = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    growth_mib = float(output.stdout.strip().splitlines()[-1])
    # Measured at about 230 MiB: the series, its orders and XLA's buffers.
    assert growth_mib < 600, f"peak memory grew by {growth_mib:.0f} MiB"
