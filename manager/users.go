package manager

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// ---- login, logout, whoami ----

func (s *Server) login(r *http.Request, _ *principal) (any, error) {
	var in api.Login
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := errors.Join(required("user", in.User), required("password", in.Password)); err != nil {
		return nil, err
	}
	fail := unauthorized("wrong user name or password")
	if meta.ValidateName("user", in.User) != nil {
		return nil, fail
	}
	u, _, err := s.store.User(in.User).Get(r.Context())
	if errors.Is(err, coord.ErrNotFound) {
		// Spend the same time as a wrong password, so timing does not tell
		// which user names exist.
		_ = bcrypt.CompareHashAndPassword([]byte("$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z5T0/Qz7z1m2WCZl7Tg3Wvry"), []byte(in.Password))
		return nil, fail
	}
	if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(in.Password)) != nil {
		return nil, fail
	}
	cookie, csrf := s.newSession(u.Name)
	w := responseWriterFrom(r)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: cookie, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL.Seconds()),
	})
	return api.Whoami{User: u.Name, Role: string(u.Role), CSRFToken: csrf}, nil
}

func (s *Server) logout(r *http.Request, _ *principal) (any, error) {
	http.SetCookie(responseWriterFrom(r), &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	return nil, nil
}

func (s *Server) whoami(r *http.Request, p *principal) (any, error) {
	w := api.Whoami{User: p.User, Role: string(p.Role)}
	if p.viaSession {
		w.CSRFToken = s.csrfFor(r)
	}
	return w, nil
}

// ---- users ----

func toAPIUser(u *meta.User) api.User {
	return api.User{Name: u.Name, Role: string(u.Role), CreatedAt: u.CreatedAt}
}

func (s *Server) listUsers(r *http.Request, _ *principal) (any, error) {
	names, err := s.store.Users().Names(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]api.User, 0, len(names))
	for _, n := range names {
		u, _, err := s.store.User(n).Get(r.Context())
		if errors.Is(err, coord.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, toAPIUser(u))
	}
	return out, nil
}

func (s *Server) getUser(r *http.Request, _ *principal) (any, error) {
	name := r.PathValue("name")
	u, _, err := s.store.User(name).Get(r.Context())
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no user %q", name)
	}
	if err != nil {
		return nil, err
	}
	return toAPIUser(u), nil
}

func (s *Server) createUser(r *http.Request, _ *principal) (any, error) {
	var in api.NewUser
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := required("name", in.Name); err != nil {
		return nil, err
	}
	if err := meta.ValidateName("user", in.Name); err != nil {
		return nil, badRequest("name", "%v", err)
	}
	if !validRole(in.Role) {
		return nil, badRequest("role", "role %q: want viewer, operator or admin", in.Role)
	}
	if err := checkPassword(in.Password); err != nil {
		return nil, err
	}
	hash, err := s.hashPassword(in.Password)
	if err != nil {
		return nil, err
	}
	u := &meta.User{Name: in.Name, Role: meta.UserRole(in.Role), PasswordHash: hash, CreatedAt: time.Now().UTC()}
	if err := s.store.User(in.Name).Create(r.Context(), u); errors.Is(err, coord.ErrExists) {
		return nil, conflict("user %q already exists", in.Name)
	} else if err != nil {
		return nil, err
	}
	return created{toAPIUser(u)}, nil
}

func (s *Server) deleteUser(r *http.Request, p *principal) (any, error) {
	name := r.PathValue("name")
	ctx := r.Context()
	if name == p.User {
		return nil, badRequest("name", "you cannot delete yourself; another admin can")
	}
	u, ver, err := s.store.User(name).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no user %q", name)
	}
	if err != nil {
		return nil, err
	}
	if u.Role == meta.Admin {
		if n, err := s.countAdmins(ctx); err != nil {
			return nil, err
		} else if n <= 1 {
			return nil, conflict("%q is the last admin", name)
		}
	}
	// Tokens first: a half-deleted user must not keep working tokens.
	ids, err := s.store.Tokens(name).Names(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := s.store.Token(name, id).Delete(ctx, coord.AnyVersion); err != nil && !errors.Is(err, coord.ErrNotFound) {
			return nil, err
		}
	}
	c := s.cfg.Coordinator
	if tdir := s.store.Tokens(name).Path(); tdir != "" {
		if err := c.Delete(ctx, tdir, coord.AnyVersion); err != nil && !errors.Is(err, coord.ErrNotFound) {
			return nil, err
		}
	}
	if err := s.store.User(name).Delete(ctx, ver); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *Server) countAdmins(ctx context.Context) (int, error) {
	names, err := s.store.Users().Names(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		u, _, err := s.store.User(name).Get(ctx)
		if err == nil && u.Role == meta.Admin {
			n++
		}
	}
	return n, nil
}

func (s *Server) setPassword(r *http.Request, p *principal) (any, error) {
	name := r.PathValue("name")
	if name != p.User && !p.allows(meta.Admin) {
		return nil, forbidden("only admins may set another user's password")
	}
	var in api.SetPassword
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := checkPassword(in.Password); err != nil {
		return nil, err
	}
	hash, err := s.hashPassword(in.Password)
	if err != nil {
		return nil, err
	}
	_, _, err = s.store.User(name).Update(r.Context(), func(u *meta.User) error {
		u.PasswordHash = hash
		return nil
	})
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no user %q", name)
	}
	return nil, err
}

func (s *Server) setRole(r *http.Request, p *principal) (any, error) {
	name := r.PathValue("name")
	var in api.SetRole
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if !validRole(in.Role) {
		return nil, badRequest("role", "role %q: want viewer, operator or admin", in.Role)
	}
	if name == p.User && in.Role != string(meta.Admin) {
		return nil, badRequest("role", "you cannot lower your own role; another admin can")
	}
	u, _, err := s.store.User(name).Update(r.Context(), func(u *meta.User) error {
		u.Role = meta.UserRole(in.Role)
		return nil
	})
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no user %q", name)
	}
	if err != nil {
		return nil, err
	}
	return toAPIUser(u), nil
}

// ---- tokens ----

func toAPIToken(t *meta.Token) api.Token {
	return api.Token{ID: t.ID, User: t.User, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
}

// tokenOwner returns whose tokens a request may see or change: its own, or
// any user's for an admin who names one with ?user=.
func tokenOwner(r *http.Request, p *principal, named string) (string, error) {
	if named == "" || named == p.User {
		return p.User, nil
	}
	if !p.allows(meta.Admin) {
		return "", forbidden("only admins may manage another user's tokens")
	}
	return named, nil
}

func (s *Server) listTokens(r *http.Request, p *principal) (any, error) {
	user, err := tokenOwner(r, p, r.URL.Query().Get("user"))
	if err != nil {
		return nil, err
	}
	ids, err := s.store.Tokens(user).Names(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]api.Token, 0, len(ids))
	for _, id := range ids {
		t, _, err := s.store.Token(user, id).Get(r.Context())
		if err == nil {
			out = append(out, toAPIToken(t))
		}
	}
	return out, nil
}

func (s *Server) createToken(r *http.Request, p *principal) (any, error) {
	var in api.NewToken
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	user, err := tokenOwner(r, p, in.User)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.store.User(user).Get(r.Context()); errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no user %q", user)
	} else if err != nil {
		return nil, err
	}
	var ttl time.Duration
	if in.TTL != "" {
		if ttl, err = time.ParseDuration(in.TTL); err != nil || ttl <= 0 {
			return nil, badRequest("ttl", "ttl %q: want a positive Go duration such as 720h", in.TTL)
		}
	}
	t, secret, err := s.newToken(r.Context(), user, ttl)
	if err != nil {
		return nil, err
	}
	out := toAPIToken(t)
	out.Secret = secret
	return created{out}, nil
}

func (s *Server) deleteToken(r *http.Request, p *principal) (any, error) {
	user, err := tokenOwner(r, p, r.URL.Query().Get("user"))
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	err = s.store.Token(user, id).Delete(r.Context(), coord.AnyVersion)
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no token %q for user %q", id, user)
	}
	return nil, err
}

// ---- audit ----

// maxAuditList bounds one listing; the newest entries come first.
const maxAuditList = 500

func (s *Server) listAudit(r *http.Request, _ *principal) (any, error) {
	ids, err := s.store.Audit().Names(r.Context())
	if err != nil {
		return nil, err
	}
	slices.Reverse(ids) // ids sort by time
	if len(ids) > maxAuditList {
		ids = ids[:maxAuditList]
	}
	out := make([]api.AuditEntry, 0, len(ids))
	for _, id := range ids {
		e, _, err := s.store.AuditEntry(id).Get(r.Context())
		if err != nil {
			continue
		}
		out = append(out, api.AuditEntry{ID: e.ID, Time: e.Time, User: e.User, Action: e.Action, Target: e.Target, Result: e.Result, Status: e.Status})
	}
	return out, nil
}
