"""The stored calibrations (pipeline.analysis.calibration) are what their seeded simulations give."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis import bandwidth, calibration, noise, snr

# The simulations are seeded, so on one machine they repeat bit for bit; another CPU's vectorised log may
# round the last bit differently, which is why the comparison allows 1e-12 relative.
RTOL = 1e-12


def test_wada_table_is_the_simulation():
    snrs, g = snr.wada_table()
    sim_snrs, sim_g = snr.simulate_wada_table()
    np.testing.assert_array_equal(snrs, sim_snrs)
    np.testing.assert_allclose(g, sim_g, rtol=RTOL, atol=0.0)


def test_band_bias_is_the_simulation_and_read_only():
    bias = noise.band_bias()
    np.testing.assert_allclose(bias, noise.simulate_band_bias(), rtol=RTOL, atol=0.0)
    assert not bias.flags.writeable


@pytest.mark.parametrize("rate", sorted(calibration.WHITE_NOISE_QUIET))
@pytest.mark.parametrize("loud", [False, True])
def test_white_noise_ratios_are_the_simulation(rate, loud):
    stored = bandwidth._white_noise_ratio_db(rate, loud=loud)
    simulated = bandwidth.simulate_white_noise_ratio_db(rate, loud=loud)
    assert stored.shape == simulated.shape
    np.testing.assert_allclose(stored, simulated, rtol=RTOL, atol=0.0)
    assert not stored.flags.writeable


def test_an_unstored_rate_is_simulated():
    rate = 12000
    assert rate not in calibration.WHITE_NOISE_QUIET
    np.testing.assert_array_equal(
        bandwidth._white_noise_ratio_db(rate, loud=False),
        bandwidth.simulate_white_noise_ratio_db(rate, loud=False),
    )
