# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled loops (Cython) for the sums an answer needs, run without the GIL.

A cube answer (:mod:`reintegration.cube`) sums some dozens of columns per cell, and per
(cell, enumerator) pair the few the cluster terms square. Written as NumPy calls that is a few
hundred small operations per answer, each holding the GIL: the fixed cost of the calls, not
the arithmetic, was most of an answer's time, and two answers never ran at once. Here one pass
over the kept rows does every sum, compiled when the package is installed, with the GIL
released, so the answers computed at once (``reintegration.analytics.COMPUTING_AT_ONCE``) use
the cores. (Numba was measured first: as fast, but importing it holds about 120 MB more per
process, most of the memory goal's margin.)
"""

import numpy as np

cimport cython

# The columns of a cube row (or of one record, as a cube row of its own), as
# reintegration.cube.VALUES lays them out (tests/test_kernels.py checks it): the counts of the
# flags (returnees, unscored, sustainable, the three levels) and of the four figures, then per
# figure its sum, sum of squares and largest absolute value (SUMS floats in all), then the
# record-key sums of the flags and the figures (KEYS integers below 2**31, held as floats).
cdef enum:
    FLAGS = 6
    FIGURES = 4
    SUMS = FLAGS + FIGURES + 3 * FIGURES
    KEYS = FLAGS + FIGURES
    WIDTH = SUMS + KEYS

COLUMNS = WIDTH


cdef void _flush(
    long long[::1] touched,
    Py_ssize_t used,
    double[:, ::1] scratch,
    unsigned char[::1] marked,
    const long long[:, ::1] terms,
    const long long[::1] counted,
    double[:, ::1] cross,
    long long[:, ::1] clusters,
    double[::1] total_cross,
    long long[::1] total_clusters,
    double[::1] overall,
) noexcept nogil:
    """Close one enumerator's rows: its per-cell sums (``scratch``) into each cell's cross
    terms and cluster counts, and its sums over every cell into the total's."""
    cdef Py_ssize_t i, t, k, p, cell
    cdef Py_ssize_t width = scratch.shape[1]
    if used == 0:
        return
    for p in range(width):
        overall[p] = 0.0
    for i in range(used):
        cell = touched[i]
        for t in range(terms.shape[0]):
            cross[cell, t] += scratch[cell, terms[t, 0]] * scratch[cell, terms[t, 1]]
        for k in range(counted.shape[0]):
            if scratch[cell, counted[k]] > 0:
                clusters[cell, k] += 1
        for p in range(width):
            overall[p] += scratch[cell, p]
            scratch[cell, p] = 0.0
        marked[cell] = 0
    for t in range(terms.shape[0]):
        total_cross[t] += overall[terms[t, 0]] * overall[terms[t, 1]]
    for k in range(counted.shape[0]):
        if overall[counted[k]] > 0:
            total_clusters[k] += 1


cdef inline void _record(
    double* v,
    Py_ssize_t row,
    const double[::1] economic,
    const double[::1] social,
    const double[::1] psychosocial,
    const double[::1] composite,
    const double[::1] sustainable,
    const signed char[::1] level,
    const long long[::1] record_key,
) noexcept nogil:
    """One record's columns, as a cube row of that record alone holds them."""
    cdef double y, key = <double>record_key[row]
    cdef double c = composite[row]
    cdef bint scored = c == c
    cdef Py_ssize_t f, i
    cdef double ys[FIGURES]
    ys[0] = economic[row]
    ys[1] = social[row]
    ys[2] = psychosocial[row]
    ys[3] = c
    v[0] = scored
    v[1] = not scored
    v[2] = scored and sustainable[row] == 1.0
    for i in range(3):
        v[3 + i] = scored and level[row] == i
    for f in range(FIGURES):
        y = ys[f]
        if scored and y == y:
            v[FLAGS + f] = 1.0
            v[FLAGS + FIGURES + 3 * f] = y
            v[FLAGS + FIGURES + 3 * f + 1] = y * y
            v[FLAGS + FIGURES + 3 * f + 2] = y if y >= 0 else -y
        else:
            v[FLAGS + f] = 0.0
            v[FLAGS + FIGURES + 3 * f] = 0.0
            v[FLAGS + FIGURES + 3 * f + 1] = 0.0
            v[FLAGS + FIGURES + 3 * f + 2] = 0.0
    for i in range(KEYS):
        v[SUMS + i] = key if v[i] != 0.0 else 0.0


cdef inline void _add(
    const double* v, double* sums, long long* key_sums, double* maxima, double* alone,
    bint lone,
) noexcept nogil:
    """One row's columns into its cell's sums, key sums and maxima (and the sums of the rows
    without an enumerator, when it has none)."""
    cdef Py_ssize_t j
    cdef double found
    for j in range(SUMS):
        sums[j] += v[j]
    for j in range(KEYS):
        key_sums[j] += <long long>v[SUMS + j]
    for j in range(FIGURES):
        found = v[FLAGS + FIGURES + 3 * j + 2]
        if found > maxima[j]:
            maxima[j] = found
    if lone:
        for j in range(SUMS):
            alone[j] += v[j]


cdef void _sum_rows(
    const double[:, ::1] values,
    bint records,
    const double[::1] economic,
    const double[::1] social,
    const double[::1] psychosocial,
    const double[::1] composite,
    const double[::1] sustainable,
    const signed char[::1] level,
    const long long[::1] record_key,
    const long long[::1] rows,
    const long long[::1] cells,
    const long long[::1] clusters_of,
    const long long[::1] paired,
    const long long[:, ::1] terms,
    const long long[::1] counted,
    double[:, ::1] sums,
    long long[:, ::1] key_sums,
    double[:, ::1] alone,
    double[:, ::1] cross,
    long long[:, ::1] clusters,
    double[:, ::1] maxima,
    double[::1] total_cross,
    long long[::1] total_clusters,
    double[:, ::1] scratch,
    unsigned char[::1] marked,
    long long[::1] touched,
    double[::1] overall,
) noexcept nogil:
    """The loop of :func:`cell_sums` and :func:`record_sums`: each row's columns read from
    ``values`` (a cube's), or with ``records`` made from the record's own columns."""
    cdef Py_ssize_t i, j, used = 0, row, cell
    cdef long long cluster, current = -1
    cdef double own[WIDTH]
    cdef const double* v
    for i in range(rows.shape[0]):
        row = rows[i]
        cell = cells[i]
        cluster = clusters_of[i]
        if records:
            _record(own, row, economic, social, psychosocial, composite, sustainable, level,
                    record_key)
            v = own
        else:
            v = &values[row, 0]
        _add(v, &sums[cell, 0], &key_sums[cell, 0], &maxima[cell, 0], &alone[cell, 0],
             cluster < 0)
        if cluster < 0:
            continue
        if cluster != current:
            _flush(touched, used, scratch, marked, terms, counted, cross, clusters,
                   total_cross, total_clusters, overall)
            used = 0
            current = cluster
        if not marked[cell]:
            marked[cell] = 1
            touched[used] = cell
            used += 1
        for j in range(paired.shape[0]):
            scratch[cell, j] += v[paired[j]]
    _flush(touched, used, scratch, marked, terms, counted, cross, clusters,
           total_cross, total_clusters, overall)


cdef void _sum_records(
    const double[::1] economic,
    const double[::1] social,
    const double[::1] psychosocial,
    const double[::1] composite,
    const double[::1] sustainable,
    const signed char[::1] level,
    const long long[::1] record_key,
    const long long[::1] rows,
    const long long[::1] cells,
    const long long[::1] clusters_of,
    Py_ssize_t enumerators,
    const long long[::1] paired,
    const long long[:, ::1] terms,
    const long long[::1] counted,
    double[:, ::1] sums,
    long long[:, ::1] key_sums,
    double[:, ::1] alone,
    double[:, ::1] cross,
    long long[:, ::1] clusters,
    double[:, ::1] maxima,
    double[::1] total_cross,
    long long[::1] total_clusters,
    int[::1] slot,
    double[:, ::1] pairs,
    double[:, ::1] per_enumerator,
) noexcept nogil:
    """:func:`record_sums`' loop, in the records' own order (the frame's, read in one sweep):
    each (cell, enumerator) pair's sums in a row of ``pairs`` of its own (``slot``: the pair's
    row, -1 before its first record), their terms added once every record is read."""
    cdef Py_ssize_t i, j, t, k, row, cell, e, at, used = 0
    cdef long long cluster
    cdef double own[WIDTH]
    for i in range(rows.shape[0]):
        row = rows[i]
        cell = cells[i]
        cluster = clusters_of[i]
        _record(own, row, economic, social, psychosocial, composite, sustainable, level,
                record_key)
        _add(own, &sums[cell, 0], &key_sums[cell, 0], &maxima[cell, 0], &alone[cell, 0],
             cluster < 0)
        if cluster < 0:
            continue
        at = slot[cell * enumerators + cluster]
        if at < 0:
            at = used
            slot[cell * enumerators + cluster] = at
            used += 1
        for j in range(paired.shape[0]):
            pairs[at, j] += own[paired[j]]
    # Per cell its enumerators in ascending order, as cell_sums adds them.
    for cell in range(sums.shape[0]):
        for e in range(enumerators):
            at = slot[cell * enumerators + e]
            if at < 0:
                continue
            for t in range(terms.shape[0]):
                cross[cell, t] += pairs[at, terms[t, 0]] * pairs[at, terms[t, 1]]
            for k in range(counted.shape[0]):
                if pairs[at, counted[k]] > 0:
                    clusters[cell, k] += 1
            for j in range(paired.shape[0]):
                per_enumerator[e, j] += pairs[at, j]
    for e in range(enumerators):
        for t in range(terms.shape[0]):
            total_cross[t] += per_enumerator[e, terms[t, 0]] * per_enumerator[e, terms[t, 1]]
        for k in range(counted.shape[0]):
            if per_enumerator[e, counted[k]] > 0:
                total_clusters[k] += 1


cdef Py_ssize_t _outside(
    const long long[::1] rows, const long long[::1] cells, Py_ssize_t top, Py_ssize_t count
) noexcept nogil:
    """The first entry whose row is not in ``0..top-1`` or cell not in ``0..count-1``, or -1."""
    cdef Py_ssize_t i
    for i in range(rows.shape[0]):
        if rows[i] < 0 or rows[i] >= top or cells[i] < 0 or cells[i] >= count:
            return i
    return -1


def _refuse_outside(rows, cells, Py_ssize_t at, Py_ssize_t top, Py_ssize_t count):
    if rows[at] < 0 or rows[at] >= top:
        raise ValueError(f"row {rows[at]} is outside the {top} rows")
    raise ValueError(f"cell {cells[at]} is outside the {count} cells")


def _records_unlocked(
    const double[::1] economic,
    const double[::1] social,
    const double[::1] psychosocial,
    const double[::1] composite,
    const double[::1] sustainable,
    const signed char[::1] level,
    const long long[::1] record_key,
    const long long[::1] rows,
    const long long[::1] cells,
    const long long[::1] clusters_of,
    Py_ssize_t enumerators,
    const long long[::1] paired,
    const long long[:, ::1] terms,
    const long long[::1] counted,
    double[:, ::1] sums,
    long long[:, ::1] key_sums,
    double[:, ::1] alone,
    double[:, ::1] cross,
    long long[:, ::1] clusters,
    double[:, ::1] maxima,
    double[::1] total_cross,
    long long[::1] total_clusters,
):
    """:func:`_sum_records` with the GIL released, after checking every index."""
    cdef Py_ssize_t i, n = rows.shape[0], top = composite.shape[0], pairs_used = 0
    cdef Py_ssize_t count = sums.shape[0], at
    with nogil:
        at = _outside(rows, cells, top, count)
    if at >= 0:
        _refuse_outside(rows, cells, at, top, count)
    slot_ = np.full(count * enumerators, -1, dtype=np.int32)
    cdef int[::1] slot = slot_
    with nogil:
        for i in range(n):
            if clusters_of[i] >= 0:
                if slot[cells[i] * enumerators + clusters_of[i]] < 0:
                    slot[cells[i] * enumerators + clusters_of[i]] = 0
                    pairs_used += 1
        slot[:] = -1
    cdef double[:, ::1] pairs = np.zeros((pairs_used, paired.shape[0]))
    cdef double[:, ::1] per_enumerator = np.zeros((enumerators, paired.shape[0]))
    with nogil:
        _sum_records(
            economic, social, psychosocial, composite, sustainable, level, record_key, rows,
            cells, clusters_of, enumerators, paired, terms, counted, sums, key_sums, alone,
            cross, clusters, maxima, total_cross, total_clusters, slot, pairs, per_enumerator,
        )


def _sum_unlocked(
    const double[:, ::1] values,
    bint records,
    const double[::1] economic,
    const double[::1] social,
    const double[::1] psychosocial,
    const double[::1] composite,
    const double[::1] sustainable,
    const signed char[::1] level,
    const long long[::1] record_key,
    const long long[::1] rows,
    const long long[::1] cells,
    const long long[::1] clusters_of,
    const long long[::1] paired,
    const long long[:, ::1] terms,
    const long long[::1] counted,
    double[:, ::1] sums,
    long long[:, ::1] key_sums,
    double[:, ::1] alone,
    double[:, ::1] cross,
    long long[:, ::1] clusters,
    double[:, ::1] maxima,
    double[::1] total_cross,
    long long[::1] total_clusters,
    double[:, ::1] scratch,
    unsigned char[::1] marked,
    long long[::1] touched,
    double[::1] overall,
):
    """:func:`_sum_rows` with the GIL released, after checking every index."""
    cdef Py_ssize_t top = composite.shape[0] if records else values.shape[0]
    cdef Py_ssize_t count = sums.shape[0], at
    with nogil:
        at = _outside(rows, cells, top, count)
    if at >= 0:
        _refuse_outside(rows, cells, at, top, count)
    with nogil:
        _sum_rows(
            values, records, economic, social, psychosocial, composite, sustainable, level,
            record_key, rows, cells, clusters_of, paired, terms, counted, sums, key_sums,
            alone, cross, clusters, maxima, total_cross, total_clusters, scratch, marked,
            touched, overall,
        )


# The (cell, enumerator) pairs record_sums indexes in a table (4 bytes each) rather than
# sorting the records by enumerator (which reads the frame out of order: ~4x slower at 1M).
SLOTS = 2**24


def _checked(paired, terms, counted):
    paired = np.asarray(paired, dtype=np.int64)
    terms = np.asarray(terms, dtype=np.int64).reshape(-1, 2)
    counted = np.asarray(counted, dtype=np.int64)
    if ((paired < 0) | (paired >= WIDTH)).any():
        raise ValueError(f"paired columns must lie in 0..{WIDTH - 1}")
    if ((terms < 0) | (terms >= len(paired))).any() or (
        (counted < 0) | (counted >= len(paired))
    ).any():
        raise ValueError("terms and counted name positions in paired")
    return paired, terms, counted


def _zeros(Py_ssize_t count, terms, counted):
    return (
        np.zeros((count, SUMS)),
        np.zeros((count, KEYS), dtype=np.int64),
        np.zeros((count, SUMS)),
        np.zeros((count, len(terms))),
        np.zeros((count, len(counted)), dtype=np.int64),
        np.zeros((count, FIGURES)),
        np.zeros(len(terms)),
        np.zeros(len(counted), dtype=np.int64),
    )


def _indices(rows, cells, clusters_of):
    """The rows, cells and clusters as int64 arrays of one length."""
    rows = np.asarray(rows, dtype=np.int64)
    cells = np.asarray(cells, dtype=np.int64)
    clusters_of = np.asarray(clusters_of, dtype=np.int64)
    if not (len(rows) == len(cells) == len(clusters_of)):
        raise ValueError("rows, cells and clusters_of differ in length")
    return rows, cells, clusters_of


def _run(values, records, columns, rows, cells, clusters_of, Py_ssize_t count, paired, terms,
         counted):
    paired, terms, counted = _checked(paired, terms, counted)
    out = _zeros(count, terms, counted)
    economic, social, psychosocial, composite, sustainable, level, record_key = columns
    _sum_unlocked(
        values, records, economic, social, psychosocial, composite, sustainable, level,
        record_key, rows, cells, clusters_of, paired, terms, counted, *out,
        np.zeros((count, len(paired))), np.zeros(count, dtype=np.uint8),
        np.zeros(count, dtype=np.int64), np.zeros(len(paired)),
    )
    return out


def cluster_order(const long long[::1] clusters_of):
    """The order that puts each cluster's entries together (a stable counting sort; the
    entries without one, -1, first)."""
    cdef Py_ssize_t n = clusters_of.shape[0], i
    cdef long long top = -1
    for i in range(n):
        if clusters_of[i] > top:
            top = clusters_of[i]
        if clusters_of[i] < -1:
            raise ValueError("a cluster below -1")
    starts_ = np.zeros(top + 3, dtype=np.int64)
    order_ = np.empty(n, dtype=np.int64)
    cdef long long[::1] starts = starts_
    cdef long long[::1] order = order_
    with nogil:
        for i in range(n):
            starts[clusters_of[i] + 2] += 1
        for i in range(1, top + 3):
            starts[i] += starts[i - 1]
        for i in range(n):
            order[starts[clusters_of[i] + 1]] = i
            starts[clusters_of[i] + 1] += 1
    return order_


_NO_RECORDS = (
    *(np.zeros(0) for _ in range(5)),
    np.zeros(0, dtype=np.int8),
    np.zeros(0, dtype=np.int64),
)


def cell_sums(values, rows, cells, clusters_of, Py_ssize_t count, paired, terms, counted):
    """Per cell, the sums of cube rows' columns, and the terms of the clusters
    (enumerators) they fall in, in one pass without the GIL.

    Parameters
    ----------
    values : float64 array (rows, ``COLUMNS``), C order
        Cube rows, their columns laid out as ``reintegration.cube.VALUES`` (sums, then
        record-key sums below 2**31, summed as integers).
    rows : int64 array
        The rows to sum (positions), each enumerator's in one run (rows without one,
        ``clusters_of`` < 0, anywhere).
    cells : int64 array
        Per entry of ``rows``, its cell (``0 <= cell < count``).
    clusters_of : int64 array
        Per entry of ``rows``, its enumerator (its cluster), or -1: a row without one holds
        records that are each a cluster of their own.
    count : int
        The number of cells.
    paired : int64 array
        The columns summed per (cell, enumerator) pair.
    terms : int64 array (terms, 2)
        Pairs ``(a, b)`` of positions in ``paired``: per cell, ``Σ_c S_a S_b`` over its
        enumerators ``c`` (``S``: the pair's sums), and over the enumerators' sums across
        cells for the total.
    counted : int64 array
        Positions in ``paired``: per cell, the enumerators whose sum of that column is
        positive (and in total, those whose sum across cells is).

    Returns
    -------
    sums, key_sums, alone, cross, clusters, maxima, total_cross, total_clusters
        ``sums`` (cells, the first ``SUMS`` columns); ``key_sums`` (cells, the key columns,
        int64); ``alone``: as ``sums``, over the rows without an enumerator only; ``cross``
        (cells, terms) and ``clusters`` (cells, counted) from the enumerators' rows alone;
        ``maxima`` (cells, figures: the largest of their ``t_`` columns, zero for a cell
        without rows); the total's cross terms and cluster counts.

    Raises
    ------
    ValueError
        Arrays of different lengths, a row, cell or column out of range.

    Examples
    --------
    Two cells; enumerator 0 has rows in both, enumerator 1 in cell 0; one row without one.
    Column 0 is the returnee count, column 10 the first figure's sum:

    >>> values = np.zeros((4, COLUMNS))
    >>> values[:, 0] = 1.0
    >>> values[:, 10] = [0.5, 0.25, 1.0, 0.75]
    >>> out = cell_sums(values, np.arange(4), np.array([0, 1, 0, 0]),
    ...                 np.array([-1, 0, 0, 1]), 2, np.array([0, 10]), np.array([[1, 1]]),
    ...                 np.array([0]))
    >>> sums, keys, alone, cross, clusters, top, total_cross, total_clusters = out
    >>> sums[:, [0, 10]].tolist(), alone[:, 10].tolist(), cross[:, 0].tolist()
    ([[3.0, 2.25], [1.0, 0.25]], [0.5, 0.0], [1.5625, 0.0625])
    >>> clusters[:, 0].tolist(), total_cross.tolist(), total_clusters.tolist()
    ([2, 1], [2.125], [2])
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != WIDTH:
        raise ValueError(f"cube rows have {WIDTH} columns")
    rows, cells, clusters_of = _indices(rows, cells, clusters_of)
    return _run(values, False, _NO_RECORDS, rows, cells, clusters_of, count, paired, terms,
                counted)


def record_sums(columns, rows, cells, clusters_of, Py_ssize_t count, paired, terms, counted):
    """:func:`cell_sums` of records, each one's columns made from its own as a cube row of
    that record alone holds them. ``columns``: (economic, social, psychosocial, composite,
    sustainable: float64 arrays; level: int8 codes of low, medium, high, -1 unknown;
    record_key: int64), one entry per record; ``rows`` are positions in them, in any order,
    summed in that order (best ascending: one sweep through the columns). Each (cell,
    enumerator) pair gets a row of sums of its own when there are at most ``SLOTS`` of them
    (cells times enumerators), else the records are put in enumerator order first (a
    counting sort).

    Examples
    --------
    Three records of one enumerator in one cell, the last unscored:

    >>> columns = (np.array([0.2, 0.4, np.nan]), np.array([0.5, 0.5, np.nan]),
    ...            np.array([0.1, 0.3, np.nan]), np.array([0.3, 0.6, np.nan]),
    ...            np.array([1.0, 0.0, np.nan]), np.array([0, 2, -1], dtype=np.int8),
    ...            np.array([7, 11, 13]))
    >>> sums, keys, *_ = record_sums(columns, np.arange(3), np.zeros(3, dtype=np.int64),
    ...                              np.zeros(3, dtype=np.int64), 1, np.array([0]),
    ...                              np.array([[0, 0]]), np.array([0]))
    >>> sums[0, :6].tolist(), keys[0, :3].tolist()
    ([2.0, 1.0, 1.0, 1.0, 0.0, 1.0], [18, 13, 7])
    """
    rows, cells, clusters_of = _indices(rows, cells, clusters_of)
    if len({len(column) for column in columns}) != 1:
        raise ValueError("the record columns differ in length")
    if len(clusters_of) and clusters_of.min() < -1:
        raise ValueError("a cluster below -1")
    enumerators = int(clusters_of.max()) + 1 if len(clusters_of) else 0
    if count * max(enumerators, 1) <= SLOTS:
        # In the records' own order: one sweep through the frame's columns.
        paired, terms, counted = _checked(paired, terms, counted)
        out = _zeros(count, terms, counted)
        _records_unlocked(*columns, rows, cells, clusters_of, max(enumerators, 1), paired,
                          terms, counted, *out)
        return out
    # Too many (cell, enumerator) pairs to index: each enumerator's records together.
    order = cluster_order(clusters_of)
    return _run(
        np.zeros((1, WIDTH)), True, columns, rows[order], cells[order], clusters_of[order],
        count, paired, terms, counted,
    )
