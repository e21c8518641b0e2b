//! Summary statistics of response times, like the paper's Table 1.
