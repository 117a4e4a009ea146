package web

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/r2m-go/r2m/api"
)

// usersPage lists users for admins. The API decides: a visitor who is not
// an admin gets its 403, shown as such.
func (c *console) usersPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	var users []api.User
	if err := c.get(r, "/api/v1/users", &users); err != nil {
		c.fail(w, r, me, err)
		return
	}
	slices.SortFunc(users, func(a, b api.User) int { return cmp.Compare(a.Name, b.Name) })
	c.render(w, r, http.StatusOK, "users", "", &pageData{Title: "Users", Nav: "users", Me: me, Data: users})
}
