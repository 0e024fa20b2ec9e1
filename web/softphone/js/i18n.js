// Every visible string of the softphone, in the three languages of the
// protocol. `init.lang` picks one; an unknown value falls back to en-US.

/** @type {Record<string, Record<string, string>>} */
const STRINGS = {
  'en-US': {
    loading: 'Starting…',
    signInTitle: 'Agent sign-in',
    email: 'Email',
    password: 'Password',
    signIn: 'Sign in',
    signingIn: 'Signing in…',
    wrongPassword: 'Wrong email or password.',
    missingCredentials: 'Enter your email and password.',
    serverUnreachable: 'Cannot reach the server. Check your connection and try again.',
    sessionExpired: 'Your session has ended. Please sign in again.',
    signedOut: 'You have signed out.',
    ssoTitle: 'Single sign-on',
    ssoNotConfigured: 'Single sign-on is not configured for this call center. Ask your administrator, or sign in with your email.',
    useEmail: 'Sign in with email',
    noSeatTitle: 'No agent seat',
    noSeat: 'This account has no agent seat, or its seat is disabled. Ask your administrator to assign one.',
    back: 'Back',
    status: 'Status',
    status1: 'Available',
    status2: 'Busy',
    status3: 'Meeting',
    status4: 'Meal',
    status5: 'Restroom',
    status6: 'Sleep',
    status7: 'Other break',
    activityringing: 'Ringing',
    activityinCall: 'In a call',
    activitywrapUp: 'Wrap-up',
    countryCode: 'Country code',
    number: 'Phone number',
    call: 'Call',
    erase: 'Erase',
    noCall: 'No active call',
    callsComing: 'Calling is not available on this server yet.',
    signOut: 'Sign out',
    seat: 'Seat',
    group: 'Group',
    connected: 'Connected',
    reconnecting: 'Connection lost. Reconnecting…',
    offline: 'Offline',
    statusRefused: 'The status cannot be changed now.',
  },
  'zh-CN': {
    loading: '正在启动…',
    signInTitle: '坐席登录',
    email: '邮箱',
    password: '密码',
    signIn: '登录',
    signingIn: '正在登录…',
    wrongPassword: '邮箱或密码错误。',
    missingCredentials: '请输入邮箱和密码。',
    serverUnreachable: '无法连接服务器，请检查网络后重试。',
    sessionExpired: '登录信息已过期，请重新登录。',
    signedOut: '您已退出登录。',
    ssoTitle: '单点登录',
    ssoNotConfigured: '本呼叫中心尚未配置单点登录。请联系管理员，或使用邮箱登录。',
    useEmail: '使用邮箱登录',
    noSeatTitle: '没有坐席',
    noSeat: '该账号不存在坐席或坐席已关闭，请联系管理员分配坐席。',
    back: '返回',
    status: '状态',
    status1: '示闲',
    status2: '示忙',
    status3: '休息-会议',
    status4: '休息-吃饭',
    status5: '休息-厕所',
    status6: '休息-睡觉',
    status7: '休息-其他',
    activityringing: '振铃中',
    activityinCall: '通话中',
    activitywrapUp: '整理中',
    countryCode: '国家码',
    number: '电话号码',
    call: '呼叫',
    erase: '删除',
    noCall: '当前没有通话',
    callsComing: '此服务器暂不支持呼叫。',
    signOut: '退出登录',
    seat: '话机号',
    group: '坐席组',
    connected: '已连接',
    reconnecting: '连接已断开，正在重连…',
    offline: '离线',
    statusRefused: '当前无法更改状态。',
  },
  'es-MX': {
    loading: 'Iniciando…',
    signInTitle: 'Acceso de agente',
    email: 'Correo electrónico',
    password: 'Contraseña',
    signIn: 'Iniciar sesión',
    signingIn: 'Iniciando sesión…',
    wrongPassword: 'Correo o contraseña incorrectos.',
    missingCredentials: 'Escribe tu correo y tu contraseña.',
    serverUnreachable: 'No se puede conectar con el servidor. Revisa tu conexión e inténtalo de nuevo.',
    sessionExpired: 'Tu sesión terminó. Inicia sesión de nuevo.',
    signedOut: 'Cerraste sesión.',
    ssoTitle: 'Inicio de sesión único',
    ssoNotConfigured: 'El inicio de sesión único no está configurado en este centro de llamadas. Consulta a tu administrador o entra con tu correo.',
    useEmail: 'Entrar con correo',
    noSeatTitle: 'Sin puesto de agente',
    noSeat: 'Esta cuenta no tiene puesto de agente o está desactivado. Pide a tu administrador que te asigne uno.',
    back: 'Volver',
    status: 'Estado',
    status1: 'Disponible',
    status2: 'Ocupado',
    status3: 'Reunión',
    status4: 'Comida',
    status5: 'Baño',
    status6: 'Descanso',
    status7: 'Otra pausa',
    activityringing: 'Sonando',
    activityinCall: 'En llamada',
    activitywrapUp: 'Cierre de llamada',
    countryCode: 'Código de país',
    number: 'Número de teléfono',
    call: 'Llamar',
    erase: 'Borrar',
    noCall: 'Sin llamada activa',
    callsComing: 'Las llamadas aún no están disponibles en este servidor.',
    signOut: 'Cerrar sesión',
    seat: 'Extensión',
    group: 'Grupo',
    connected: 'Conectado',
    reconnecting: 'Se perdió la conexión. Reconectando…',
    offline: 'Sin conexión',
    statusRefused: 'No se puede cambiar el estado ahora.',
  },
};

export const LANGS = Object.keys(STRINGS);

let current = 'en-US';

/** @param {unknown} lang */
export function setLang(lang) {
  current = typeof lang === 'string' && STRINGS[lang] ? lang : 'en-US';
  document.documentElement.lang = current;
  return current;
}

export function lang() {
  return current;
}

/** @param {string} key */
export function t(key) {
  return STRINGS[current][key] ?? STRINGS['en-US'][key] ?? key;
}

/** For the tests: every language must have every key of en-US. */
export function missingKeys() {
  const base = Object.keys(STRINGS['en-US']);
  /** @type {Record<string, string[]>} */
  const out = {};
  for (const l of LANGS) out[l] = base.filter((k) => !(k in STRINGS[l]));
  return out;
}
