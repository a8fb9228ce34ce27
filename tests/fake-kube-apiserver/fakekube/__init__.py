"""Building blocks of the fake kube-apiserver test double (see ../fake_kube_apiserver.py)."""
