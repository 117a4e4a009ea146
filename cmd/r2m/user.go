package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/r2m-go/r2m/api"
)

func newUserCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users and roles (admin)"}
	f := addAPIFlags(cmd)

	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			users, err := c.Users(cmd.Context())
			if err != nil {
				return err
			}
			return f.printer(cmd).print(users, []string{"NAME", "ROLE", "CREATED"}, func(add func(...any)) {
				for _, u := range users {
					add(u.Name, u.Role, u.CreatedAt.Format(time.RFC3339))
				}
			})
		},
	}

	var role, password string
	var passwordStdin bool
	getPassword := func(cmd *cobra.Command) (string, error) {
		switch {
		case passwordStdin && password != "":
			return "", errors.New("give --password or --password-stdin, not both")
		case passwordStdin:
			return readSecret(cmd.InOrStdin())
		case password == "":
			return "", errors.New("a password is required: --password-stdin (preferred) or --password")
		}
		return password, nil
	}
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := getPassword(cmd)
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), api.NewUser{Name: args[0], Role: role, Password: pw})
			if err != nil {
				return err
			}
			return f.printer(cmd).print(u, []string{"NAME", "ROLE"}, func(add func(...any)) { add(u.Name, u.Role) })
		},
	}
	create.Flags().StringVar(&role, "role", "viewer", "viewer, operator or admin")
	create.Flags().StringVar(&password, "password", "", "the password (visible in shell history; prefer --password-stdin)")
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")

	passwd := &cobra.Command{
		Use: "passwd NAME", Short: "Set a user's password", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := getPassword(cmd)
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed\n", args[0])
			return nil
		},
	}
	passwd.Flags().StringVar(&password, "password", "", "the password (visible in shell history; prefer --password-stdin)")
	passwd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")

	setRole := &cobra.Command{
		Use: "role NAME ROLE", Short: "Change a user's role", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			u, err := c.SetRole(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return f.printer(cmd).print(u, []string{"NAME", "ROLE"}, func(add func(...any)) { add(u.Name, u.Role) })
		},
	}

	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a user and its tokens", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, create, passwd, setRole, del)
	return cmd
}

func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	f := addAPIFlags(cmd)
	var user, ttl string

	list := &cobra.Command{
		Use: "list", Short: "List your tokens (or --user's, as admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			toks, err := c.Tokens(cmd.Context(), user)
			if err != nil {
				return err
			}
			return f.printer(cmd).print(toks, []string{"ID", "USER", "CREATED", "EXPIRES"}, func(add func(...any)) {
				for _, t := range toks {
					exp := "never"
					if !t.ExpiresAt.IsZero() {
						exp = t.ExpiresAt.Format(time.RFC3339)
					}
					add(t.ID, t.User, t.CreatedAt.Format(time.RFC3339), exp)
				}
			})
		},
	}
	list.Flags().StringVar(&user, "user", "", "whose tokens (admin only; default: yours)")

	create := &cobra.Command{
		Use: "create", Short: "Create a token and print it (it is shown only once)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), api.NewToken{User: user, TTL: ttl})
			if err != nil {
				return err
			}
			if f.output == "json" {
				return f.printer(cmd).print(t, nil, nil)
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&user, "user", "", "whose token (admin only; default: yours)")
	create.Flags().StringVar(&ttl, "ttl", "", "lifetime such as 720h (default: no expiry)")

	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.DeleteToken(cmd.Context(), user, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	revoke.Flags().StringVar(&user, "user", "", "whose token (admin only; default: yours)")
	cmd.AddCommand(list, create, revoke)
	return cmd
}
