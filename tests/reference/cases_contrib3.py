"""Reference cases of optax.contrib (helper contrib3): normalize, muon, sam.

The test problem's params are {'b': (160,), 'extra': [(3, 5), ()], 'w': (128,
160)}: muon orthogonalizes the two matrices (3 x 5, and 128 x 160) and sends
'b' and the scalar to its AdamW. Cases that need extra inputs (sam's opaque
mode, sophia's Hessian-vector products, dpsgd's per-example gradients) have
their own generator, make_contrib3_reference.py.
"""

CASES = {
    # --- normalize ------------------------------------------------------
    "contrib_normalize_sgd": dict(expr="ox.chain(ox.contrib.normalize(), ox.sgd(5e-2))"),
    "contrib_normalize_adam": dict(expr="ox.chain(ox.contrib.normalize(), ox.adam(1e-2))"),
    # --- muon -----------------------------------------------------------
    "muon_default": dict(expr="ox.contrib.muon(1e-2)"),
    "muon_no_nesterov_wd": dict(
        expr="ox.contrib.muon(ox.schedules.cosine_decay_schedule(2e-2, 100), beta=0.9, "
             "weight_decay=0.1, nesterov=False, adam_learning_rate=3e-3, "
             "adam_weight_decay=1e-2)"),
    "muon_dion_adaptive": dict(
        expr="ox.contrib.muon(2e-4, ns_coeffs='dion', adaptive=True, consistent_rms=0.2)"),
    "muon_aol": dict(expr="ox.contrib.muon(1e-2, ns_steps=4, preconditioning='aol')"),
    "muon_schatten_mu32": dict(
        expr="ox.contrib.muon(1e-2, preconditioning='schatten', mu_dtype=np.float32)"),
    # spectral: an SVD per step; only the 3 x 5 matrix is Muon's here (an SVD of
    # the 128 x 160 one every step made this case 50 s of the test run)
    "muon_spectral": dict(
        expr="ox.contrib.muon(1e-2, ns_steps=3, preconditioning='spectral', "
             "muon_weight_dimension_numbers={'b': None, 'extra': "
             "[ox.contrib.MuonDimensionNumbers(), None], 'w': None})"),
    # the matrices' transposes as (output, reduction): a spec per leaf, None -> adam
    "muon_dimension_numbers": dict(
        expr="ox.contrib.muon(1e-2, muon_weight_dimension_numbers={'b': None, 'extra': "
             "[ox.contrib.MuonDimensionNumbers(1, 0), None], "
             "'w': ox.contrib.MuonDimensionNumbers(reduction_axis=1, output_axis=0)})"),
    # --- sam (transparent mode) -----------------------------------------
    "sam_default": dict(
        expr="ox.contrib.sam(ox.sgd(1e-2), ox.chain(ox.contrib.normalize(), ox.sgd(5e-2)))"),
    "sam_adam_period3_noreset": dict(
        expr="ox.contrib.sam(ox.adam(1e-2), ox.chain(ox.contrib.normalize(), ox.adam(5e-2)), "
             "sync_period=3, reset_state=False)"),
}
