// consumer_cpp.cpp: a C++ program including the libbsvi headers.
//
//   g++ -std=c++11 -Wall -Wextra -Werror consumer_cpp.cpp $(pkg-config --cflags --libs bsvi)
//
// Checks that the headers compile cleanly as C++ (extern "C", no C-only
// constructs) and that a few calls link and work. Exits 0 on success.
#include <bsvi/bsvi.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

namespace {

struct ProposalDeleter {
    void operator()(bsvi_proposal *q) const { bsvi_proposal_destroy(q); }
};
using ProposalPtr = std::unique_ptr<bsvi_proposal, ProposalDeleter>;

}  // namespace

int main() {
    std::printf("libbsvi %s (C++ consumer)\n", bsvi_version_string());

    bsvi_proposal *raw = nullptr;
    bsvi_status st = bsvi_proposal_create(4, 2, &raw);
    ProposalPtr q(raw);
    if (st != BSVI_OK || !q) {
        std::fprintf(stderr, "FAIL bsvi_proposal_create: %s\n", bsvi_status_string(st));
        return 1;
    }

    // The default proposal is N(0, I): KL to the standard normal is zero.
    std::vector<double> kl(bsvi_proposal_batch(q.get()));
    st = bsvi_proposal_kl_standard_normal(q.get(), kl.data());
    if (st != BSVI_OK) {
        std::fprintf(stderr, "FAIL kl: %s\n", bsvi_proposal_last_error(q.get()));
        return 1;
    }
    for (double v : kl) {
        if (std::fabs(v) > 1e-12) {
            std::fprintf(stderr, "FAIL KL(N(0,I) || N(0,I)) = %g\n", v);
            return 1;
        }
    }

    const double a[3] = {0.0, std::log(2.0), -INFINITY};
    const double lse = bsvi_logsumexp(a, 3);
    if (std::fabs(lse - std::log(3.0)) > 1e-12) {
        std::fprintf(stderr, "FAIL logsumexp = %.17g\n", lse);
        return 1;
    }
    if (bsvi_status_string(BSVI_ERR_NULL_ARGUMENT) == nullptr) return 1;

    std::printf("consumer_cpp: OK\n");
    return 0;
}
