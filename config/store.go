package config

import "net/url"

// Store selects where shared state lives.
type Store struct {
	Redis    string `yaml:"redis"`     // redis:// URL (no password in the file: use redis_env)
	RedisEnv string `yaml:"redis_env"` // environment variable holding the URL (may carry a password)
	Memory   bool   `yaml:"memory"`    // explicit opt-in to single-process memory state
	Prefix   string `yaml:"prefix"`    // key namespace, default "keywatch:"

	redisURL Secret
}

// RedisURL returns the Redis URL from the file or the environment.
func (s Store) RedisURL() Secret { return s.redisURL }

// validate defaults the prefix to "keywatch:", checks that exactly one store
// is chosen, and reads the Redis URL from the file or the environment.
func (s *Store) validate(v *checker) {
	if s.Prefix == "" {
		s.Prefix = "keywatch:"
	}
	switch {
	case s.Memory && (s.Redis != "" || s.RedisEnv != ""):
		v.add("store", "choose one store: redis for shared state, or memory: true for a single process, not both")
	case s.Redis != "" && s.RedisEnv != "":
		v.add("store.redis_env", "set redis or redis_env, not both")
	case s.Redis != "":
		s.redisURL = NewSecret(s.Redis)
		if u, err := url.Parse(s.Redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			v.add("store.redis", "want a redis:// or rediss:// URL")
		} else if _, has := u.User.Password(); has {
			v.add("store.redis", "the URL carries a password: put the whole URL in an environment variable and name it with redis_env")
		}
	case s.RedisEnv != "":
		s.redisURL = v.env("store.redis_env", "", s.RedisEnv)
		if val := s.redisURL.Reveal(); val != "" {
			if u, err := url.Parse(val); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
				v.add("store.redis_env", "environment variable %s does not hold a redis:// or rediss:// URL", s.RedisEnv)
			}
		}
	case !s.Memory:
		v.add("store", "no store: set redis (or redis_env) for shared state, or memory: true to run a single process whose state is lost on exit")
	}
}
