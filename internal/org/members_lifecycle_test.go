package org_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/org"
)

// A member change killed at any step is committed or not as a whole, and
// has its event exactly when it is committed: the event goes in with the
// member write and is inserted by the change or, after a crash, by recovery.
func TestMemberChangesSurviveCrashAtEveryStep(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(svc *org.Service, owner org.Principal, bob *org.Member) error
		// done reports, from the settled organization, whether the change is committed.
		done   func(o *org.Organization, bob *org.Member) bool
		action string
	}{
		{"add", func(svc *org.Service, owner org.Principal, _ *org.Member) error {
			_, err := svc.AddMember(context.Background(), owner, org.AddMemberInput{Email: "carol@acme.com", Password: "password-1", Role: org.RoleMember})
			return err
		}, func(o *org.Organization, _ *org.Member) bool { return org.MemberByEmail(o, "carol@acme.com") != nil }, "member.added"},
		{"role", func(svc *org.Service, owner org.Principal, bob *org.Member) error {
			_, err := svc.SetRole(context.Background(), owner, bob.ID, org.RoleOwner)
			return err
		}, func(o *org.Organization, bob *org.Member) bool {
			return org.MemberByID(o, bob.ID).Role == org.RoleOwner
		}, "member.role_changed"},
		{"remove", func(svc *org.Service, owner org.Principal, bob *org.Member) error {
			return svc.RemoveMember(context.Background(), owner, bob.ID)
		}, func(o *org.Organization, bob *org.Member) bool { return org.MemberByID(o, bob.ID) == nil }, "member.removed"},
		{"own email", func(svc *org.Service, owner org.Principal, _ *org.Member) error {
			_, err := svc.UpdateMe(context.Background(), owner, org.SelfUpdate{Email: strp("boss@acme.com"), CurrentPassword: strp("password-1")})
			return err
		}, func(o *org.Organization, _ *org.Member) bool { return org.MemberByEmail(o, "boss@acme.com") != nil }, "credentials.changed"},
	} {
		forEachCrashPoint(t, tc.name, func(t *testing.T, k int) bool {
			f := newFixture(t, 0)
			live := f.service(org.Config{})
			o, err := live.Create(context.Background(), createInput("Acme Corp", "admin@acme.com"))
			require.NoError(t, err)
			bob, err := live.AddMember(context.Background(), principal(o), org.AddMemberInput{Email: "bob@acme.com", Password: "password-1", Role: org.RoleAdmin})
			require.NoError(t, err)

			svc, reached := f.crashingAt(k, org.StrategyAuto)
			err = tc.run(svc, principal(o), bob)
			if !reached() {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, errCrash)
			}

			f.recover(org.StrategyAuto)
			orgs := f.settledInvariants()
			require.Len(t, orgs, 1)
			want := []string{"org.created", "member.added"}
			if tc.done(orgs[0], bob) {
				want = append(want, tc.action)
			}
			assert.Equal(t, want, f.actions(o.ID), "crashed after %q", f.crashed)
			return reached()
		})
	}
}
