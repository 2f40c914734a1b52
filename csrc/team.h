/* team.h -- what the last parallel region of an extension module actually ran on.
 *
 * Kernels call cycnn_note_team(REGION) from one thread (thread 0) inside each OpenMP parallel
 * region; cycnn_last_team() returns (region << 16) | team size of the latest such call, the team
 * size being omp_get_num_threads() there, i.e. the threads OpenMP really gave the region (1
 * without OpenMP). Tests read it to check that a "2 threads" case runs 2 threads and which path
 * (region) a call took. REGION is a small positive number chosen by the module (< 32768).
 *
 * The record is one int written and read atomically (relaxed: it is a report, not a
 * synchronisation). Its storage is static, so every extension module that includes this header
 * keeps its own record.
 */
#ifndef CYCNN_TEAM_H
#define CYCNN_TEAM_H

#ifdef _OPENMP
#include <omp.h>
#endif

static int cycnn_team_record = 0;

static inline void cycnn_note_team(int region)
{
#ifdef _OPENMP
    int n = omp_get_num_threads();
#else
    int n = 1;
#endif
    __atomic_store_n(&cycnn_team_record, (region << 16) | (n & 0xffff), __ATOMIC_RELAXED);
}

static inline int cycnn_last_team(void)
{
    return __atomic_load_n(&cycnn_team_record, __ATOMIC_RELAXED);
}

#endif /* CYCNN_TEAM_H */
