package manager

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// principal is who made a request.
type principal struct {
	User string
	Role meta.UserRole
	// viaSession is true for the console's cookie session, which needs the
	// CSRF header on mutations; tokens do not.
	viaSession bool
}

// roleRank orders roles by privilege.
func roleRank(r meta.UserRole) int {
	switch r {
	case meta.Viewer:
		return 1
	case meta.Operator:
		return 2
	case meta.Admin:
		return 3
	}
	return 0
}

func validRole(r string) bool { return roleRank(meta.UserRole(r)) > 0 }

// allows reports whether p may act with the rights of role.
func (p *principal) allows(role meta.UserRole) bool { return roleRank(p.Role) >= roleRank(role) }

type principalKey struct{}

func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Cookie names used by the console.
const (
	sessionCookie = "r2m_session"
	csrfHeader    = "X-CSRF-Token"
	sessionTTL    = 12 * time.Hour
)

// authenticate identifies the caller from a bearer token or a session
// cookie. It returns unauthorized when neither is present or valid.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, unauthorized("Authorization header: want \"Bearer <token>\"")
		}
		return s.verifyToken(r.Context(), strings.TrimSpace(tok))
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return s.verifySession(r.Context(), c.Value)
	}
	return nil, unauthorized("authentication required: send \"Authorization: Bearer <token>\" or log in")
}

// ---- passwords ----

// minPasswordLen is the shortest password the API accepts.
const minPasswordLen = 10

func checkPassword(pw string) error {
	if len(pw) < minPasswordLen {
		return badRequest("password", "password must have at least %d characters", minPasswordLen)
	}
	if len(pw) > 72 {
		return badRequest("password", "password must have at most 72 bytes (bcrypt's limit)")
	}
	return nil
}

func (s *Server) hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cfg.PasswordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---- tokens ----
//
// A token is "r2m.<user>.<id>.<secret>", with user base64url-encoded so any
// valid name fits. The record at /users/{user}/tokens/{id} keeps SHA-256 of
// the secret; the secret itself exists only in the creator's hands.

func formatToken(user, id, secret string) string {
	return "r2m." + base64.RawURLEncoding.EncodeToString([]byte(user)) + "." + id + "." + secret
}

func parseToken(tok string) (user, id, secret string, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || parts[0] != "r2m" {
		return "", "", "", false
	}
	u, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || meta.ValidateName("user", string(u)) != nil || meta.ValidateName("token id", parts[2]) != nil || parts[3] == "" {
		return "", "", "", false
	}
	return string(u), parts[2], parts[3], true
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// newToken creates a token for user and returns it with its secret.
func (s *Server) newToken(ctx context.Context, user string, ttl time.Duration) (*meta.Token, string, error) {
	id := strconv.FormatInt(time.Now().UnixNano(), 36) + randomString(3)
	id = strings.NewReplacer("_", "a", "-", "b").Replace(id)
	secret := randomString(32)
	t := &meta.Token{ID: id, User: user, Hash: hashSecret(secret), CreatedAt: time.Now().UTC()}
	if ttl > 0 {
		t.ExpiresAt = t.CreatedAt.Add(ttl)
	}
	if err := s.store.Token(user, id).Create(ctx, t); err != nil {
		return nil, "", err
	}
	return t, formatToken(user, id, secret), nil
}

func (s *Server) verifyToken(ctx context.Context, tok string) (*principal, error) {
	user, id, secret, ok := parseToken(tok)
	if !ok {
		return nil, unauthorized("invalid token")
	}
	t, _, err := s.store.Token(user, id).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil, unauthorized("invalid token")
	}
	if err != nil {
		return nil, unavailable("cannot check the token", err)
	}
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hashSecret(secret))) != 1 {
		return nil, unauthorized("invalid token")
	}
	if !t.ExpiresAt.IsZero() && time.Now().After(t.ExpiresAt) {
		return nil, unauthorized("token expired")
	}
	return s.principalFor(ctx, user, false)
}

// principalFor reads the user's current role, so that role changes and
// deletions take effect on the next request.
func (s *Server) principalFor(ctx context.Context, user string, session bool) (*principal, error) {
	u, _, err := s.store.User(user).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil, unauthorized("user no longer exists")
	}
	if err != nil {
		return nil, unavailable("cannot read the user", err)
	}
	return &principal{User: u.Name, Role: u.Role, viaSession: session}, nil
}

// ---- sessions ----
//
// A session cookie is "<user b64>.<expiry unix>.<nonce>.<mac>", MAC'd with
// the shared secret at /manager/secret, so any server instance can verify
// it. The CSRF token is a second MAC over the same session; the console
// sends it back in X-CSRF-Token, which a cross-site form cannot do.

func (s *Server) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.secret)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) newSession(user string) (cookie, csrf string) {
	u := base64.RawURLEncoding.EncodeToString([]byte(user))
	exp := strconv.FormatInt(time.Now().Add(sessionTTL).Unix(), 10)
	nonce := randomString(16)
	body := u + "." + exp + "." + nonce
	return body + "." + s.mac("session", body), s.mac("csrf", body)
}

// sessionBody checks a cookie's MAC and expiry and returns its body and
// user.
func (s *Server) sessionBody(v string) (body, user string, ok bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return "", "", false
	}
	body, sig := v[:i], v[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.mac("session", body))) {
		return "", "", false
	}
	parts := strings.Split(body, ".")
	if len(parts) != 3 {
		return "", "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || time.Now().Unix() > exp {
		return "", "", false
	}
	u, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", "", false
	}
	return body, string(u), true
}

func (s *Server) verifySession(ctx context.Context, v string) (*principal, error) {
	_, user, ok := s.sessionBody(v)
	if !ok {
		return nil, unauthorized("session expired or invalid; log in again")
	}
	return s.principalFor(ctx, user, true)
}

// checkCSRF verifies the CSRF header of a cookie-authenticated mutation.
func (s *Server) checkCSRF(r *http.Request) error {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return forbidden("missing session")
	}
	body, _, ok := s.sessionBody(c.Value)
	if !ok {
		return unauthorized("session expired or invalid; log in again")
	}
	if !hmac.Equal([]byte(r.Header.Get(csrfHeader)), []byte(s.mac("csrf", body))) {
		return forbidden("missing or wrong " + csrfHeader + " header")
	}
	return nil
}

// csrfFor returns the CSRF token of the request's session, for whoami.
func (s *Server) csrfFor(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	body, _, ok := s.sessionBody(c.Value)
	if !ok {
		return ""
	}
	return s.mac("csrf", body)
}

// loadSecret reads the cookie-signing key, creating it on first start.
func (s *Server) loadSecret(ctx context.Context) error {
	sec, _, err := s.store.Secret().Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		fresh := &meta.Secret{Key: []byte(randomString(32)), CreatedAt: time.Now().UTC()}
		err = s.store.Secret().Create(ctx, fresh)
		if errors.Is(err, coord.ErrExists) { // another server made it first
			sec, _, err = s.store.Secret().Get(ctx)
		} else {
			sec = fresh
		}
	}
	if err != nil {
		return fmt.Errorf("load session secret: %w", err)
	}
	s.secret = sec.Key
	return nil
}
