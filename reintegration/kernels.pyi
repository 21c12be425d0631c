import numpy as np

COLUMNS: int
SLOTS: int

def cluster_order(clusters_of: np.ndarray) -> np.ndarray: ...
def cell_sums(
    values: np.ndarray,
    rows: np.ndarray,
    cells: np.ndarray,
    clusters_of: np.ndarray,
    count: int,
    paired: np.ndarray,
    terms: np.ndarray,
    counted: np.ndarray,
) -> tuple[np.ndarray, ...]: ...
def record_sums(
    columns: tuple[np.ndarray, ...],
    rows: np.ndarray,
    cells: np.ndarray,
    clusters_of: np.ndarray,
    count: int,
    paired: np.ndarray,
    terms: np.ndarray,
    counted: np.ndarray,
) -> tuple[np.ndarray, ...]: ...
