package httpapi

import (
	"net/http"

	"github.com/orgservice/orgservice/internal/org"
)

// usedLimit is one quota: what is used of it and its limit.
type usedLimit struct {
	Used  int64 `json:"used"`
	Limit int64 `json:"limit"`
}

// usageResponse is an organization's usage of its quotas.
type usageResponse struct {
	Documents    usedLimit `json:"documents"`
	StorageBytes usedLimit `json:"storage_bytes"`
	Members      usedLimit `json:"members"`
}

func toUsage(r org.UsageReport) usageResponse {
	return usageResponse{
		Documents:    usedLimit{Used: r.Used.Documents, Limit: r.Quotas.Documents},
		StorageBytes: usedLimit{Used: r.Used.StorageBytes, Limit: r.Quotas.StorageBytes},
		Members:      usedLimit{Used: r.Members, Limit: r.Quotas.Members},
	}
}

func (s *Server) readUsage(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		s.fail(w, r, badRequest("this endpoint takes no query parameters"))
		return
	}
	p, _ := principal(r.Context())
	u, err := s.orgs.Usage(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toUsage(u))
}
